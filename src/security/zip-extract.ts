import { constants as fsc, promises as fs } from 'node:fs';
import path from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { HayError, TimeoutError, ValidationError } from '../errors.js';

export interface ZipLimits {
  /** Size of the zip file itself (HAY_UPLOAD_MAX_BYTES). */
  maxCompressedBytes: number;
  /** Entries in the archive, directories included (HAY_UPLOAD_MAX_ENTRIES). */
  maxEntries: number;
  /** Real inflated bytes of all files together (HAY_UPLOAD_MAX_UNCOMPRESSED_BYTES). */
  maxUncompressedBytes: number;
}

export interface ExtractResult {
  /** Regular files written. */
  files: number;
  /** Real inflated bytes written. */
  bytes: number;
  /** Absolute path of the extracted plugin root (the staging dir). */
  rootDir: string;
  /** The single top-level folder that was stripped, or null when entries were written as-is. */
  strippedPrefix: string | null;
}

export interface ExtractProgress {
  entry: string;
  /** Inflated bytes so far, all entries. */
  totalBytes: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const HOST_UNIX = 3;

interface PlannedEntry {
  entry: Entry;
  name: string;
  segments: string[];
  dir: boolean;
  executable: boolean;
}

function show(name: string): string {
  const s = JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
  return s;
}

function refuse(message: string): ValidationError {
  return new ValidationError('UPLOAD_INVALID', message);
}

/** Checks one entry's name and type; returns undefined for entries that are skipped (`./`, __MACOSX). */
function plan(entry: Entry): PlannedEntry | undefined {
  const raw = entry.fileName as unknown;
  const name =
    typeof raw === 'string'
      ? raw
      : yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw as Buffer, entry.extraFields, true);
  const n = show(name);
  if (name.includes('\0')) throw refuse(`entry ${n} has a NUL byte in its name`);
  if (name.includes('\\'))
    throw refuse(`entry ${n} uses a backslash in its name; only "/" separators are allowed`);
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw refuse(`entry ${n} has an absolute path`);
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..'))
    throw refuse(`entry ${n} has a ".." path segment that escapes the plugin folder`);
  if (entry.isEncrypted()) throw refuse(`entry ${n} is encrypted; upload an unencrypted zip`);
  const mode = entry.externalFileAttributes >>> 16;
  const type = mode & S_IFMT;
  if (type === S_IFLNK) throw refuse(`entry ${n} is a symbolic link; symlinks are not allowed`);
  if (type !== 0 && type !== S_IFREG && type !== S_IFDIR)
    throw refuse(`entry ${n} is not a regular file or directory`);
  const dir = name.endsWith('/') || type === S_IFDIR;
  if (!dir && entry.compressionMethod !== 0 && entry.compressionMethod !== 8)
    throw refuse(`entry ${n} uses unsupported compression method ${entry.compressionMethod} (use deflate)`);
  if (segments.length === 0 || segments[0] === '__MACOSX') return undefined;
  if (!dir && name.endsWith('/')) throw refuse(`entry ${n} is not a regular file or directory`);
  const fromUnix = entry.versionMadeBy >> 8 === HOST_UNIX;
  return { entry, name, segments, dir, executable: fromUnix && (mode & 0o111) !== 0 };
}

/** The single top-level folder all entries share, when there is one and it is not a file. */
function commonRoot(entries: readonly PlannedEntry[]): string | null {
  const first = entries[0]?.segments[0];
  if (first === undefined) return null;
  let nested = false;
  for (const e of entries) {
    if (e.segments[0] !== first) return null;
    if (e.segments.length === 1 && !e.dir) return null;
    if (e.segments.length > 1) nested = true;
  }
  return nested ? first : null;
}

function checkConflicts(entries: readonly PlannedEntry[]): void {
  const files = new Set<string>();
  const dirs = new Set<string>();
  for (const e of entries) {
    const key = e.segments.join('/');
    if (files.has(key) || (e.dir ? false : dirs.has(key)))
      throw refuse(`entry ${show(e.name)} appears more than once in the archive`);
    (e.dir ? dirs : files).add(key);
  }
  for (const e of entries) {
    for (let i = 1; i < e.segments.length; i++) {
      const parent = e.segments.slice(0, i).join('/');
      if (files.has(parent)) throw refuse(`entry ${show(e.name)} is inside ${show(parent)}, which is a file`);
    }
  }
}

function readEntries(zip: ZipFile, maxEntries: number): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const out: Entry[] = [];
    const cleanup = (): void => {
      zip.removeListener('entry', onEntry);
      zip.removeListener('end', onEnd);
      zip.removeListener('error', onError);
    };
    const onEntry = (entry: Entry): void => {
      out.push(entry);
      if (out.length > maxEntries) {
        cleanup();
        reject(refuse(`upload has more than ${maxEntries} entries (HAY_UPLOAD_MAX_ENTRIES)`));
        return;
      }
      zip.readEntry();
    };
    const onEnd = (): void => {
      cleanup();
      resolve(out);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(refuse(`upload is not a valid zip archive: ${err.message}`));
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

/** Counts real inflated bytes and fails the pipeline the moment a limit is crossed. */
class ByteCounter extends Transform {
  entryBytes = 0;
  constructor(
    private readonly name: string,
    private readonly declared: number,
    private readonly totals: { bytes: number; max: number },
    private readonly onProgress: ((p: ExtractProgress) => void) | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.entryBytes += chunk.length;
    this.totals.bytes += chunk.length;
    if (this.totals.bytes > this.totals.max)
      return cb(
        refuse(
          `upload inflates to more than ${this.totals.max} bytes (HAY_UPLOAD_MAX_UNCOMPRESSED_BYTES); ` +
            `stopped at entry ${show(this.name)}`,
        ),
      );
    if (this.entryBytes > this.declared)
      return cb(
        refuse(
          `entry ${show(this.name)} inflates to more than the ${this.declared} bytes its header declares`,
        ),
      );
    this.onProgress?.({ entry: this.name, totalBytes: this.totals.bytes });
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.entryBytes < this.declared)
      return cb(
        refuse(`entry ${show(this.name)} is shorter than the ${this.declared} bytes its header declares`),
      );
    cb();
  }
}

/**
 * Creates root/segments one level at a time (mode 0755). An existing level must be a real directory
 * (lstat, so a symlink is never followed).
 */
async function ensureDir(root: string, segments: readonly string[]): Promise<void> {
  let dir = root;
  for (const seg of segments) {
    dir = path.join(dir, seg);
    try {
      await fs.mkdir(dir, { mode: 0o755 });
      await fs.chmod(dir, 0o755);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fs.lstat(dir);
      if (!st.isDirectory()) throw new HayError('INTERNAL', `${dir} exists and is not a directory`);
    }
  }
}

function abortError(signal: AbortSignal): HayError {
  const reason: unknown = signal.reason;
  if (reason instanceof HayError) return reason;
  return new TimeoutError('extracting the upload was aborted before it finished');
}

/** Maps anything thrown while extracting to a HayError: archive problems → UPLOAD_INVALID. */
function toHayError(err: unknown, current: string | undefined, signal: AbortSignal | undefined): HayError {
  if (err instanceof HayError) return err;
  if (signal?.aborted) return abortError(signal);
  const e = err as NodeJS.ErrnoException;
  if (typeof e.syscall === 'string')
    return new HayError('INTERNAL', `extracting the upload failed: ${e.code ?? e.message}`, { cause: err });
  const at =
    current !== undefined ? `entry ${show(current)} is corrupt` : 'upload is not a valid zip archive';
  return refuse(`${at}: ${e.message}`);
}

/**
 * Extracts an uploaded plugin zip into `stagingDir`, which must not exist yet (it is created, mode 0755,
 * so nothing in it can be a pre-existing symlink). Checked, in order:
 *   zip file size <= maxCompressedBytes; central-directory entry count (and entries actually read)
 *   <= maxEntries; every name is relative, uses "/" only, has no "..", no NUL; every entry is a regular
 *   file or directory (symlinks, devices, fifos refused via the unix mode in external attributes);
 *   no encrypted entries, only stored/deflate; no duplicate names or file-vs-folder clashes.
 * Then files are inflated one by one, counting REAL bytes: over maxUncompressedBytes in total, or more
 * or fewer bytes than an entry's header declares, aborts at once. Header sizes are never trusted.
 * If all entries share one top-level folder it is stripped. `__MACOSX/` entries are skipped. An archive
 * with no files is refused.
 * Files are written with O_EXCL|O_NOFOLLOW, mode 0644 (0755 when the unix mode had an exec bit);
 * directories 0755; never setuid/setgid/sticky.
 * On any failure (or `signal` abort) the staging dir is removed and a HayError is thrown:
 * ValidationError('UPLOAD_INVALID') naming the entry and the rule, TimeoutError on abort, INTERNAL for
 * disk errors. `onProgress` fires after each inflated chunk.
 */
export async function extractPluginZip(
  zipPath: string,
  stagingDir: string,
  limits: ZipLimits,
  signal?: AbortSignal,
  onProgress?: (p: ExtractProgress) => void,
): Promise<ExtractResult> {
  const root = path.resolve(stagingDir);
  if (signal?.aborted) throw abortError(signal);
  const stat = await fs.stat(zipPath).catch((err: NodeJS.ErrnoException) => {
    throw new HayError('INTERNAL', `cannot read the uploaded file: ${err.code ?? err.message}`, {
      cause: err,
    });
  });
  if (stat.size > limits.maxCompressedBytes)
    throw refuse(
      `upload is ${stat.size} bytes; the limit is ${limits.maxCompressedBytes} bytes (HAY_UPLOAD_MAX_BYTES)`,
    );
  if (
    await fs.lstat(root).then(
      () => true,
      () => false,
    )
  )
    throw new HayError('INTERNAL', `staging directory ${root} already exists`);

  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: false,
      strictFileNames: true,
    });
  } catch (err) {
    throw refuse(`upload is not a valid zip archive: ${(err as Error).message}`);
  }

  let created = false;
  let current: string | undefined;
  try {
    if (zip.fileSize > limits.maxCompressedBytes)
      throw refuse(
        `upload is ${zip.fileSize} bytes; the limit is ${limits.maxCompressedBytes} bytes (HAY_UPLOAD_MAX_BYTES)`,
      );
    if (zip.entryCount > limits.maxEntries)
      throw refuse(
        `upload has ${zip.entryCount} entries; the limit is ${limits.maxEntries} (HAY_UPLOAD_MAX_ENTRIES)`,
      );
    const planned: PlannedEntry[] = [];
    for (const entry of await readEntries(zip, limits.maxEntries)) {
      const p = plan(entry);
      if (p) planned.push(p);
    }
    checkConflicts(planned);
    const prefix = commonRoot(planned);
    if (prefix !== null) for (const p of planned) p.segments = p.segments.slice(1);

    await fs.mkdir(path.dirname(root), { recursive: true });
    await fs.mkdir(root, { mode: 0o755 });
    created = true;
    await fs.chmod(root, 0o755);

    const totals = { bytes: 0, max: limits.maxUncompressedBytes };
    let files = 0;
    for (const p of planned) {
      if (signal?.aborted) throw abortError(signal);
      if (p.segments.length === 0) continue;
      current = p.name;
      const target = path.join(root, ...p.segments);
      if (!target.startsWith(root + path.sep))
        throw refuse(`entry ${show(p.name)} resolves outside the plugin folder`);
      if (p.dir) {
        await ensureDir(root, p.segments);
        continue;
      }
      await ensureDir(root, p.segments.slice(0, -1));
      const mode = p.executable ? 0o755 : 0o644;
      const handle = await fs.open(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
      let source: Readable;
      try {
        await handle.chmod(mode);
        source = await zip.openReadStreamPromise(p.entry);
      } catch (err) {
        await handle.close();
        throw err;
      }
      const counter = new ByteCounter(p.name, p.entry.uncompressedSize, totals, onProgress);
      await pipeline(source, counter, handle.createWriteStream(), signal ? { signal } : {});
      files++;
    }
    current = undefined;
    if (files === 0) throw refuse('upload contains no files');
    return { files, bytes: totals.bytes, rootDir: root, strippedPrefix: prefix };
  } catch (err) {
    if (created) await fs.rm(root, { recursive: true, force: true });
    throw toHayError(err, current, signal);
  } finally {
    zip.close();
  }
}
