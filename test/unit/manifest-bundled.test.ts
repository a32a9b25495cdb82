import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { ManifestValidator, manifestSchemaPath } from '../../src/manifest/validator.js';

const pluginsDir = fileURLToPath(new URL('../../plugins/', import.meta.url));
const bundled = ['core', 'test'].flatMap((group) => {
  try {
    return readdirSync(path.join(pluginsDir, group), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `${group}/${d.name}`);
  } catch {
    return [];
  }
});

describe('bundled plugin manifests', () => {
  const validator = new ManifestValidator(manifestSchemaPath(pluginsDir));

  it('finds the bundled plugins', () => {
    expect(bundled.length).toBeGreaterThan(0);
  });

  it.each(bundled)('plugins/%s/manifest.json is valid and its id is unique', async (rel) => {
    const { manifest } = await loadManifest(path.join(pluginsDir, rel), validator, `plugins/${rel}`);
    const sameId = [];
    for (const other of bundled) {
      const loaded = await loadManifest(path.join(pluginsDir, other), validator, `plugins/${other}`);
      if (loaded.manifest.id === manifest.id) sameId.push(other);
    }
    expect(sameId).toEqual([rel]);
  });
});
