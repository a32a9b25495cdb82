import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { packVersion, unpackVersion } from '../../src/lifecycle/version-archive.js';
import { computePluginChecksum } from '../../src/manifest/checksum.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-archive-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('plugin version archives', () => {
  it('round-trips files, modes, folders and symlinks; the checksum is the same', async () => {
    const src = path.join(tmp, 'src');
    mkdirSync(path.join(src, 'node_modules', 'dep'), { recursive: true });
    writeFileSync(path.join(src, 'manifest.json'), '{"id":"x"}');
    writeFileSync(path.join(src, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(path.join(src, 'node_modules', 'dep', 'index.js'), 'module.exports = 1;');
    symlinkSync('../shared/zod', path.join(src, 'node_modules', 'zod'));
    const archive = await packVersion(src, 1024 * 1024);
    expect(archive).toBeDefined();
    const out = path.join(tmp, 'out');
    await unpackVersion(archive!, out);
    expect(readFileSync(path.join(out, 'manifest.json'), 'utf8')).toBe('{"id":"x"}');
    expect(statSync(path.join(out, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(readFileSync(path.join(out, 'node_modules', 'dep', 'index.js'), 'utf8')).toBe(
      'module.exports = 1;',
    );
    expect(readlinkSync(path.join(out, 'node_modules', 'zod'))).toBe('../shared/zod');
    expect(await computePluginChecksum(out)).toBe(await computePluginChecksum(src));
  });

  it('is bounded: files over maxBytes give no archive', async () => {
    const big = path.join(tmp, 'big');
    mkdirSync(big);
    writeFileSync(path.join(big, 'a.bin'), Buffer.alloc(600));
    writeFileSync(path.join(big, 'b.bin'), Buffer.alloc(600));
    expect(await packVersion(big, 1000)).toBeUndefined();
    expect(await packVersion(big, 1200)).toBeDefined();
  });

  it('refuses entries that leave the target folder, and foreign data', async () => {
    const head = Buffer.from(JSON.stringify({ p: '../escaped', t: 'f', s: 1 }));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(head.length);
    const evil = gzipSync(Buffer.concat([Buffer.from('HAYV1\n'), len, head, Buffer.from('x')]));
    await expect(unpackVersion(evil, path.join(tmp, 'evil'))).rejects.toThrow('bad entry path');
    await expect(unpackVersion(gzipSync(Buffer.from('PK')), path.join(tmp, 'zip'))).rejects.toThrow(
      'not a plugin version archive',
    );
  });
});
