import { crc32, deflateRawSync } from 'node:zlib';

/**
 * A tiny zip writer for tests: builds archives in memory, including malformed and malicious ones
 * (traversal names, symlink modes, lying sizes, wrong entry counts). No zip64, no data descriptors.
 */
export interface ZipEntrySpec {
  /** Raw name; a trailing "/" marks a directory. Strings are written as UTF-8 (flag bit 11 set). */
  name: string | Buffer;
  /** File content; omit for directories. */
  data?: Buffer | string;
  /** Default 'deflate' for files with data, 'store' for directories. */
  method?: 'store' | 'deflate';
  /** Full unix st_mode (type bits included) put in the external attributes, e.g. 0o120777 for a symlink. */
  unixMode?: number;
  /** Host system in "version made by" (3 = unix, 0 = MS-DOS). Default 3. */
  madeBy?: number;
  /** Lie in both headers about the inflated size. */
  declaredSize?: number;
  /** Set the "encrypted" flag (bit 0) without encrypting. */
  encryptedFlag?: boolean;
  /** Raw compression method number to write instead of method. */
  methodNumber?: number;
}

export interface ZipOptions {
  /** Lie in the end-of-central-directory record about how many entries there are. */
  declaredEntryCount?: number;
}

export function buildZip(entries: readonly ZipEntrySpec[], options: ZipOptions = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = typeof e.name === 'string' ? Buffer.from(e.name, 'utf8') : e.name;
    const isDir = name.at(-1) === 0x2f;
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const method = e.method ?? (isDir || data.length === 0 ? 'store' : 'deflate');
    const body = method === 'deflate' ? deflateRawSync(data) : data;
    const methodNumber = e.methodNumber ?? (method === 'deflate' ? 8 : 0);
    const crc = crc32(data);
    const usize = e.declaredSize ?? data.length;
    const flags = (typeof e.name === 'string' ? 0x800 : 0) | (e.encryptedFlag ? 1 : 0);
    const mode = e.unixMode ?? (isDir ? 0o040755 : 0o100644);
    const external = (((mode & 0xffff) << 16) | (isDir ? 0x10 : 0)) >>> 0;

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(methodNumber, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(usize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(((e.madeBy ?? 3) << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(methodNumber, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(usize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30);
    central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36);
    central.writeUInt32LE(external, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const count = options.declaredEntryCount ?? entries.length;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0, 4);
  eocd.writeUInt16LE(0, 6);
  eocd.writeUInt16LE(count, 8);
  eocd.writeUInt16LE(count, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  eocd.writeUInt16LE(0, 20);
  return Buffer.concat([...locals, cd, eocd]);
}
