import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HayError } from '../../src/errors.js';
import { extractPluginZip, type ExtractProgress, type ZipLimits } from '../../src/security/zip-extract.js';
import { buildZip, type ZipEntrySpec, type ZipOptions } from '../helpers/zip-writer.js';

const MB = 1024 * 1024;
const LIMITS: ZipLimits = { maxCompressedBytes: 5 * MB, maxEntries: 100, maxUncompressedBytes: 10 * MB };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Setup {
  dir: string;
  zipPath: string;
  staging: string;
}

function setup(entries: readonly ZipEntrySpec[] | Buffer, options?: ZipOptions): Setup {
  const dir = mkdtempSync(path.join(tmpdir(), 'hay-zip-'));
  dirs.push(dir);
  const zipPath = path.join(dir, 'upload.zip');
  writeFileSync(zipPath, Buffer.isBuffer(entries) ? entries : buildZip(entries, options));
  return { dir, zipPath, staging: path.join(dir, 'staging') };
}

/** Extracts and expects a refusal: returns the error after checking nothing was left behind. */
async function refused(
  s: Setup,
  limits: Partial<ZipLimits> = {},
  extra: { signal?: AbortSignal; onProgress?: (p: ExtractProgress) => void } = {},
): Promise<HayError> {
  let caught: unknown;
  try {
    await extractPluginZip(s.zipPath, s.staging, { ...LIMITS, ...limits }, extra.signal, extra.onProgress);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(HayError);
  expect(existsSync(s.staging)).toBe(false);
  expect(readdirSync(s.dir)).toEqual(['upload.zip']);
  return caught as HayError;
}

async function refusedWith(s: Setup, message: string, limits: Partial<ZipLimits> = {}): Promise<void> {
  const err = await refused(s, limits);
  expect({ code: err.code, message: err.message }).toEqual({ code: 'UPLOAD_INVALID', message });
}

function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(path.join(root, r));
      out.push(`${r}${st.isDirectory() ? '/' : ''} ${(st.mode & 0o7777).toString(8)}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

describe('extractPluginZip: accepted archives', () => {
  it('extracts files and folders with safe modes', async () => {
    const s = setup([
      { name: 'manifest.json', data: '{"id":"x"}' },
      { name: 'bin/', unixMode: 0o040777 },
      { name: 'bin/run.sh', data: '#!/bin/sh\necho hi\n', unixMode: 0o104755 },
      { name: 'src/deep/index.js', data: 'export {}\n', method: 'store' },
      { name: 'dos.txt', data: 'from windows', madeBy: 0, unixMode: 0 },
      { name: './dot.txt', data: 'dot' },
    ]);
    const res = await extractPluginZip(s.zipPath, s.staging, LIMITS);
    expect(res).toEqual({ files: 5, bytes: 10 + 18 + 10 + 12 + 3, rootDir: s.staging, strippedPrefix: null });
    expect(listTree(s.staging)).toEqual([
      'bin/ 755',
      'bin/run.sh 755',
      'dos.txt 644',
      'dot.txt 644',
      'manifest.json 644',
      'src/ 755',
      'src/deep/ 755',
      'src/deep/index.js 644',
    ]);
    expect(readFileSync(path.join(s.staging, 'bin/run.sh'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
  });

  it('strips a single common top-level folder and skips __MACOSX', async () => {
    const s = setup([
      { name: 'my-plugin/' },
      { name: 'my-plugin/manifest.json', data: '{}' },
      { name: 'my-plugin/src/index.js', data: '1' },
      { name: '__MACOSX/my-plugin/._manifest.json', data: 'junk' },
    ]);
    const res = await extractPluginZip(s.zipPath, s.staging, LIMITS);
    expect(res).toEqual({ files: 2, bytes: 3, rootDir: s.staging, strippedPrefix: 'my-plugin' });
    expect(listTree(s.staging)).toEqual(['manifest.json 644', 'src/ 755', 'src/index.js 644']);
  });

  it('does not strip when the top level holds a file or several folders', async () => {
    const a = setup([
      { name: 'pkg/a.js', data: 'a' },
      { name: 'README.md', data: 'r' },
    ]);
    expect((await extractPluginZip(a.zipPath, a.staging, LIMITS)).strippedPrefix).toBeNull();
    expect(listTree(a.staging)).toEqual(['README.md 644', 'pkg/ 755', 'pkg/a.js 644']);
    const b = setup([{ name: 'only.txt', data: 'o' }]);
    expect((await extractPluginZip(b.zipPath, b.staging, LIMITS)).strippedPrefix).toBeNull();
    expect(listTree(b.staging)).toEqual(['only.txt 644']);
  });
});

describe('extractPluginZip: refused archives', () => {
  it('refuses zip-slip names', async () => {
    await refusedWith(
      setup([
        { name: 'ok.txt', data: 'x' },
        { name: '../../evil', data: 'pwned' },
      ]),
      'entry "../../evil" has a ".." path segment that escapes the plugin folder',
    );
    await refusedWith(
      setup([{ name: 'a/../../evil', data: 'pwned' }]),
      'entry "a/../../evil" has a ".." path segment that escapes the plugin folder',
    );
    expect(existsSync(path.join(tmpdir(), 'evil'))).toBe(false);
  });

  it('refuses absolute paths, drive letters and backslashes', async () => {
    await refusedWith(setup([{ name: '/etc/x', data: 'x' }]), 'entry "/etc/x" has an absolute path');
    await refusedWith(setup([{ name: 'C:/x', data: 'x' }]), 'entry "C:/x" has an absolute path');
    await refusedWith(
      setup([{ name: 'C:\\x', data: 'x' }]),
      'entry "C:\\\\x" uses a backslash in its name; only "/" separators are allowed',
    );
    await refusedWith(
      setup([{ name: '..\\..\\evil', data: 'x' }]),
      'entry "..\\\\..\\\\evil" uses a backslash in its name; only "/" separators are allowed',
    );
  });

  it('refuses a NUL byte in a name', async () => {
    await refusedWith(
      setup([{ name: Buffer.from('a.txt\0.png', 'latin1'), data: 'x' }]),
      'entry "a.txt\\u0000.png" has a NUL byte in its name',
    );
  });

  it('refuses symlinks and other special files', async () => {
    await refusedWith(
      setup([
        { name: 'ok.txt', data: 'x' },
        { name: 'link', data: '/etc/passwd', unixMode: 0o120777 },
      ]),
      'entry "link" is a symbolic link; symlinks are not allowed',
    );
    await refusedWith(
      setup([{ name: 'fifo', unixMode: 0o010644 }]),
      'entry "fifo" is not a regular file or directory',
    );
  });

  it('refuses a zip bomb while inflating and stops early', async () => {
    const s = setup([
      { name: 'manifest.json', data: '{}' },
      { name: 'bomb.bin', data: Buffer.alloc(50 * MB) },
    ]);
    expect(statSync(s.zipPath).size).toBeLessThan(200 * 1024);
    let maxSeen = 0;
    const err = await refused(s, {}, { onProgress: (p) => void (maxSeen = Math.max(maxSeen, p.totalBytes)) });
    expect(err.message).toBe(
      'upload inflates to more than 10485760 bytes (HAY_UPLOAD_MAX_UNCOMPRESSED_BYTES); stopped at entry "bomb.bin"',
    );
    expect(maxSeen).toBeGreaterThan(0);
    expect(maxSeen).toBeLessThanOrEqual(10 * MB);
  });

  it('refuses entries whose real size differs from their header (lying sizes)', async () => {
    await refusedWith(
      setup([{ name: 'big.txt', data: Buffer.alloc(MB, 0x61), declaredSize: 10 }]),
      'entry "big.txt" inflates to more than the 10 bytes its header declares',
    );
    await refusedWith(
      setup([{ name: 'stored.txt', data: 'x'.repeat(100), method: 'store', declaredSize: 1000 }]),
      'entry "stored.txt" is shorter than the 1000 bytes its header declares',
    );
  });

  it('counts real bytes across entries against the uncompressed limit', async () => {
    const entries = [1, 2, 3].map((i) => ({ name: `f${i}.bin`, data: Buffer.alloc(4 * MB, i) }));
    await refusedWith(
      setup(entries),
      'upload inflates to more than 10485760 bytes (HAY_UPLOAD_MAX_UNCOMPRESSED_BYTES); stopped at entry "f3.bin"',
    );
  });

  it('refuses too many entries (central directory count)', async () => {
    const entries = Array.from({ length: 6 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }));
    await refusedWith(setup(entries), 'upload has 6 entries; the limit is 5 (HAY_UPLOAD_MAX_ENTRIES)', {
      maxEntries: 5,
    });
  });

  it('refuses a zip file over the compressed size limit', async () => {
    const s = setup([{ name: 'a.txt', data: 'hello' }]);
    const size = statSync(s.zipPath).size;
    await refusedWith(s, `upload is ${size} bytes; the limit is 100 bytes (HAY_UPLOAD_MAX_BYTES)`, {
      maxCompressedBytes: 100,
    });
  });

  it('refuses files that are not zips, encrypted entries, unknown methods and corrupt data', async () => {
    const notZip = await refused(setup(Buffer.from('definitely not a zip file, just text')));
    expect(notZip.code).toBe('UPLOAD_INVALID');
    expect(notZip.message).toMatch(
      /^upload is not a valid zip archive: End of central directory record signature not found/,
    );
    await refusedWith(
      setup([{ name: 'secret.txt', data: 'x', method: 'store', encryptedFlag: true }]),
      'entry "secret.txt" is encrypted; upload an unencrypted zip',
    );
    await refusedWith(
      setup([{ name: 'b.bz2', data: 'x', method: 'store', methodNumber: 12 }]),
      'entry "b.bz2" uses unsupported compression method 12 (use deflate)',
    );
    const corrupt = await refused(
      setup([
        { name: 'ok.txt', data: 'fine' },
        { name: 'bad.js', data: Buffer.alloc(64, 0xff), method: 'store', methodNumber: 8 },
      ]),
    );
    expect(corrupt.code).toBe('UPLOAD_INVALID');
    expect(corrupt.message).toMatch(/^entry "bad\.js" is corrupt: /);
  });

  it('refuses an archive with no files', async () => {
    await refusedWith(
      setup([{ name: 'empty/' }, { name: '__MACOSX/x', data: 'junk' }]),
      'upload contains no files',
    );
  });

  it('refuses duplicate names and files used as folders', async () => {
    await refusedWith(
      setup([
        { name: 'a.txt', data: '1' },
        { name: './a.txt', data: '2' },
      ]),
      'entry "./a.txt" appears more than once in the archive',
    );
    await refusedWith(
      setup([
        { name: 'a', data: '1' },
        { name: 'a/b.txt', data: '2' },
      ]),
      'entry "a/b.txt" is inside "a", which is a file',
    );
  });

  it('stops when the signal aborts and cleans up', async () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ name: `f${i}.bin`, data: Buffer.alloc(MB, i) }));
    const s = setup(entries);
    const ac = new AbortController();
    const err = await refused(
      s,
      {},
      { signal: ac.signal, onProgress: (p) => p.totalBytes > MB && ac.abort() },
    );
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'TIMEOUT',
      message: 'extracting the upload was aborted before it finished',
    });
  });

  it('refuses to extract into an existing staging dir and leaves it alone', async () => {
    const s = setup([{ name: 'a.txt', data: 'x' }]);
    mkdirSync(s.staging);
    writeFileSync(path.join(s.staging, 'keep'), 'k');
    await expect(extractPluginZip(s.zipPath, s.staging, LIMITS)).rejects.toMatchObject({
      code: 'INTERNAL',
      message: `staging directory ${s.staging} already exists`,
    });
    expect(readdirSync(s.staging)).toEqual(['keep']);
  });
});
