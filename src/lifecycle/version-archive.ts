import { lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** One entry: a folder, a regular file (mode kept) or a symlink (target kept verbatim). */
interface Entry {
  p: string;
  t: 'd' | 'f' | 'l';
  m?: number;
  s?: number;
  l?: string;
}

const MAGIC = Buffer.from('HAYV1\n');

/**
 * Packs `dir` (every file, folder and symlink under it, node_modules included) into one gzip buffer:
 * MAGIC, then per entry a 4-byte length, a JSON header and the file's bytes. undefined when the files
 * come to more than `maxBytes` before compression (the archive is not kept then). Other file types
 * (sockets, devices) are skipped.
 */
export async function packVersion(dir: string, maxBytes: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [MAGIC];
  let total = 0;
  const walk = async (rel: string): Promise<boolean> => {
    const names = (await readdir(path.join(dir, rel))).sort();
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(dir, r);
      const st = await lstat(abs);
      let entry: Entry;
      let data: Buffer | undefined;
      if (st.isSymbolicLink()) entry = { p: r, t: 'l', l: await readlink(abs) };
      else if (st.isDirectory()) entry = { p: r, t: 'd' };
      else if (st.isFile()) {
        total += st.size;
        if (total > maxBytes) return false;
        data = await readFile(abs);
        entry = { p: r, t: 'f', m: st.mode & 0o777, s: data.length };
      } else continue;
      const head = Buffer.from(JSON.stringify(entry));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(head.length);
      parts.push(len, head);
      if (data) parts.push(data);
      if (entry.t === 'd' && !(await walk(r))) return false;
    }
    return true;
  };
  if (!(await walk(''))) return undefined;
  return gzipAsync(Buffer.concat(parts));
}

/**
 * Writes the files of a packVersion() archive into `dir` (created; must not exist yet). Throws on a
 * malformed archive or an entry path that is absolute or leaves `dir`; the caller removes `dir` then.
 */
export async function unpackVersion(archive: Buffer, dir: string): Promise<void> {
  const raw = await gunzipAsync(archive);
  if (!raw.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not a plugin version archive');
  await mkdir(dir, { recursive: true });
  const root = path.resolve(dir) + path.sep;
  let at = MAGIC.length;
  while (at < raw.length) {
    if (at + 4 > raw.length) throw new Error('truncated archive');
    const len = raw.readUInt32BE(at);
    at += 4;
    const entry = JSON.parse(raw.subarray(at, at + len).toString('utf8')) as Entry;
    at += len;
    const target = path.resolve(dir, entry.p);
    if (path.isAbsolute(entry.p) || !target.startsWith(root)) throw new Error(`bad entry path ${entry.p}`);
    if (entry.t === 'd') await mkdir(target, { recursive: true });
    else if (entry.t === 'l') await symlink(entry.l ?? '', target);
    else {
      const size = entry.s ?? 0;
      if (at + size > raw.length) throw new Error('truncated archive');
      await writeFile(target, raw.subarray(at, at + size), { mode: entry.m ?? 0o644 });
      at += size;
    }
  }
}

/** Removes `dir` quietly (a failed unpack). */
export async function discard(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
