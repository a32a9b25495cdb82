import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computePluginChecksum } from '../../src/manifest/checksum.js';

let tmp: string;
let counter = 0;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'hay-checksum-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Creates a fresh plugin folder from a map of relative path -> contents. */
async function makePlugin(files: Record<string, string>): Promise<string> {
  const dir = path.join(tmp, `p${counter++}`);
  await mkdir(dir);
  for (const [rel, contents] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), contents);
  }
  return dir;
}

const BASE = {
  'manifest.json': '{"id":"x"}',
  'src/index.js': 'console.log(1)',
  'src/lib/util.js': 'export const a = 1;',
  'README.md': '# x',
};

describe('computePluginChecksum', () => {
  it('is a hex SHA-256 that depends only on names and contents', async () => {
    const a = await makePlugin(BASE);
    const reversed = Object.fromEntries(Object.entries(BASE).reverse());
    const b = await makePlugin(reversed);
    const sum = await computePluginChecksum(a);
    expect(sum).toMatch(/^[0-9a-f]{64}$/);
    expect(await computePluginChecksum(a)).toBe(sum);
    expect(await computePluginChecksum(b)).toBe(sum);
    expect(await computePluginChecksum(a, { concurrency: 1 })).toBe(sum);
  });

  it('changes when a file changes, is added, removed or renamed', async () => {
    const dir = await makePlugin(BASE);
    const seen = new Set([await computePluginChecksum(dir)]);
    const expectNew = async (): Promise<void> => {
      const sum = await computePluginChecksum(dir);
      expect(seen.has(sum)).toBe(false);
      seen.add(sum);
    };

    await writeFile(path.join(dir, 'src/index.js'), 'console.log(2)');
    await expectNew();
    await writeFile(path.join(dir, 'src/empty.js'), '');
    await expectNew();
    await rename(path.join(dir, 'src/lib/util.js'), path.join(dir, 'src/lib/util2.js'));
    await expectNew();
    await rename(path.join(dir, 'src/lib'), path.join(dir, 'src/library'));
    await expectNew();
    await rm(path.join(dir, 'README.md'));
    await expectNew();
  });

  it('does not confuse moving content between files', async () => {
    const a = await makePlugin({ x: 'ab', y: '' });
    const b = await makePlugin({ x: 'a', y: 'b' });
    expect(await computePluginChecksum(a)).not.toBe(await computePluginChecksum(b));
  });

  it('ignores node_modules, dist and .git at any depth', async () => {
    const clean = await computePluginChecksum(await makePlugin(BASE));
    const noisy = await makePlugin({
      ...BASE,
      'node_modules/dep/index.js': 'x',
      'dist/index.js': 'built',
      '.git/HEAD': 'ref: refs/heads/main',
      'src/node_modules/inner.js': 'y',
      'packages/a/dist/out.js': 'z',
      'packages/a/.git': 'gitdir: elsewhere',
    });
    // packages/a/ is otherwise empty: empty folders do not count either.
    expect(await computePluginChecksum(noisy)).toBe(clean);
    await writeFile(path.join(noisy, 'dist/index.js'), 'rebuilt');
    expect(await computePluginChecksum(noisy)).toBe(clean);
    await writeFile(path.join(noisy, 'distribution.js'), 'counts');
    expect(await computePluginChecksum(noisy)).not.toBe(clean);
  });

  it('records symlinks by target without following them', async () => {
    const outside = path.join(tmp, 'outside.txt');
    await writeFile(outside, 'one');
    const dir = await makePlugin(BASE);
    await symlink(outside, path.join(dir, 'link'));
    await symlink('src', path.join(dir, 'srclink'));
    const sum = await computePluginChecksum(dir);

    await writeFile(outside, 'two');
    expect(await computePluginChecksum(dir)).toBe(sum);

    await rm(path.join(dir, 'srclink'));
    await symlink('src/lib', path.join(dir, 'srclink'));
    expect(await computePluginChecksum(dir)).not.toBe(sum);

    // A link and a file holding the same text as the link target are different things.
    const asLink = await makePlugin({});
    await symlink('target', path.join(asLink, 'f'));
    const asFile = await makePlugin({ f: 'target' });
    expect(await computePluginChecksum(asLink)).not.toBe(await computePluginChecksum(asFile));
  });

  it('rejects when the folder does not exist', async () => {
    await expect(computePluginChecksum(path.join(tmp, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
