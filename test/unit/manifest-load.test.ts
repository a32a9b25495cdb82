import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManifestError } from '../../src/errors.js';
import { loadManifest, MAX_MANIFEST_BYTES } from '../../src/manifest/load.js';
import { ManifestValidator, manifestSchemaPath } from '../../src/manifest/validator.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const guidePath = fileURLToPath(new URL('../fixtures/manifests/guide-test-plugin.json', import.meta.url));

let tmp: string;
let validator: ManifestValidator;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'hay-load-'));
  validator = new ManifestValidator(manifestSchemaPath(path.join(root, 'plugins')));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function pluginDir(name: string, manifest?: string): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  if (manifest !== undefined) await writeFile(path.join(dir, 'manifest.json'), manifest);
  return dir;
}

async function problems(promise: Promise<unknown>): Promise<readonly string[]> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ManifestError);
  return (err as ManifestError).problems;
}

describe('loadManifest', () => {
  it('returns the validated manifest and the exact text', async () => {
    const text = await readFile(guidePath, 'utf8');
    const dir = await pluginDir('ok', text);
    const loaded = await loadManifest(dir, validator, 'plugins/core/ok');
    expect(loaded.manifest.id).toBe('hay-plugin-test');
    expect(loaded.raw).toBe(text);
  });

  it('names the manifest by display path, whether given the folder or the file', async () => {
    const dir = await pluginDir('bad', '{"id":"bad"}');
    const expected = [
      'plugins/core/bad/manifest.json: / is missing required property "name"',
      'plugins/core/bad/manifest.json: / is missing required property "version"',
      'plugins/core/bad/manifest.json: / is missing required property "type"',
    ];
    expect(await problems(loadManifest(dir, validator, 'plugins/core/bad'))).toEqual(expected);
    expect(await problems(loadManifest(dir, validator, 'plugins/core/bad/'))).toEqual(expected);
    expect(await problems(loadManifest(dir, validator, 'plugins/core/bad/manifest.json'))).toEqual(expected);
    expect((await problems(loadManifest(dir, validator)))[0]).toMatch(
      new RegExp(`^${path.join(dir, 'manifest.json')}: / is missing`),
    );
  });

  it('explains a missing manifest or plugin folder', async () => {
    const dir = await pluginDir('empty');
    const message =
      'plugins/core/empty/manifest.json: file not found: every plugin folder needs a manifest.json at its root';
    expect(await problems(loadManifest(dir, validator, 'plugins/core/empty'))).toEqual([message]);
    expect(await problems(loadManifest(path.join(tmp, 'nope'), validator, 'plugins/core/empty'))).toEqual([
      message,
    ]);
  });

  it('reports invalid JSON with its position', async () => {
    const dir = await pluginDir('json', '{\n  "id": "x"\n  "name": "y"\n}');
    expect(await problems(loadManifest(dir, validator, 'plugins/custom/json'))).toEqual([
      'plugins/custom/json/manifest.json: invalid JSON at line 3, column 3 (offset 16): expected "," or "}" but found "\\""',
    ]);
  });

  it('refuses directories, symlinks and oversized files', async () => {
    const asDir = await pluginDir('dir');
    await mkdir(path.join(asDir, 'manifest.json'));
    expect(await problems(loadManifest(asDir, validator, 'p/dir'))).toEqual([
      'p/dir/manifest.json: is not a regular file',
    ]);

    const linked = await pluginDir('link');
    await symlink(guidePath, path.join(linked, 'manifest.json'));
    expect(await problems(loadManifest(linked, validator, 'p/link'))).toEqual([
      'p/link/manifest.json: must be a regular file, not a symbolic link',
    ]);

    const big = await pluginDir('big', ' '.repeat(MAX_MANIFEST_BYTES + 1));
    expect(await problems(loadManifest(big, validator, 'p/big'))).toEqual([
      `p/big/manifest.json: is ${MAX_MANIFEST_BYTES + 1} bytes; a manifest may be at most ${MAX_MANIFEST_BYTES} bytes`,
    ]);
  });
});
