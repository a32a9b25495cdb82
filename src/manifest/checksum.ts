import { createHash } from 'node:crypto';
import { createReadStream, readdir, readFile, readlink, type Dirent } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

// The callback fs functions, promisified, are several times faster than node:fs/promises for many small
// files (no FileHandle bookkeeping) and stay fast under thousands of concurrent calls.
const readdirAsync = promisify(readdir);
const readFileAsync = promisify(readFile);
const readlinkAsync = promisify(readlink);

/** Folder names skipped at any depth: installed/built output and VCS data are not part of the source. */
export const CHECKSUM_EXCLUDED_NAMES: ReadonlySet<string> = new Set(['node_modules', 'dist', '.git']);

export interface ChecksumOptions {
  /** Filesystem operations in flight at once for this call (default 32). */
  concurrency?: number;
}

type Entry = { rel: string; kind: 'file'; digest: string } | { rel: string; kind: 'link'; target: string };

/**
 * SHA-256 (lowercase hex) identifying a plugin folder's source: every regular file's relative POSIX path
 * and contents, and every symlink's path and target (links are never followed). Entries named
 * node_modules, dist or .git are skipped at any depth; other special files (FIFOs, sockets) are ignored.
 * The result depends only on names and contents (not on mtimes, modes or readdir order), so renaming,
 * adding, removing or editing a file changes it. Rejects with the fs error if the folder cannot be read.
 */
export async function computePluginChecksum(dir: string, options: ChecksumOptions = {}): Promise<string> {
  const limit = createLimiter(Math.max(1, options.concurrency ?? 32));
  const entries: Entry[] = [];

  const walk = async (absDir: string, relDir: string): Promise<void> => {
    const dirents: Dirent[] = await limit(() => readdirAsync(absDir, { withFileTypes: true }));
    await Promise.all(
      dirents.map(async (d) => {
        if (CHECKSUM_EXCLUDED_NAMES.has(d.name)) return;
        const abs = path.join(absDir, d.name);
        const rel = relDir === '' ? d.name : `${relDir}/${d.name}`;
        if (d.isSymbolicLink()) {
          const target = await limit(() => readlinkAsync(abs));
          entries.push({ rel, kind: 'link', target: target.split(path.sep).join('/') });
        } else if (d.isDirectory()) {
          await walk(abs, rel);
        } else if (d.isFile()) {
          entries.push({ rel, kind: 'file', digest: await limit(() => hashFile(abs)) });
        }
      }),
    );
  };
  await walk(dir, '');

  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const total = createHash('sha256');
  for (const e of entries) {
    // NUL cannot occur in paths, so the framing is unambiguous.
    total.update(e.kind === 'file' ? `F\0${e.rel}\0${e.digest}\0` : `L\0${e.rel}\0${e.target}\0`);
  }
  return total.digest('hex');
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    hash.update(await readFileAsync(file));
  } catch (err) {
    // Files over the Buffer limit (2 GiB) are streamed instead.
    if ((err as { code?: unknown }).code !== 'ERR_FS_FILE_TOO_LARGE') throw err;
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Runs at most `max` tasks at once; the rest wait in FIFO order. A finishing task hands its slot on. */
function createLimiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
