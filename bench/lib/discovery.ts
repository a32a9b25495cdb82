import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { openDatabase } from '../../src/db/database.js';
import { ManifestValidator, manifestSchemaPath } from '../../src/manifest/validator.js';
import { packageRoot } from '../../src/paths.js';
import { PluginRegistry } from '../../src/registry/plugin-registry.js';
import { testPluginDir } from './mcp-baselines.js';

export interface DiscoveryResult {
  plugins: number;
  ok: number;
  firstScanMs: number;
  rescanMs: number;
}

/**
 * Generates `count` plugin folders (copies of the test plugin with distinct ids) under a temporary
 * `core/`, then times `registry.scan()` on a fresh database: the first scan (validate, checksum, insert
 * every row) and a second one with nothing changed.
 */
export async function measureDiscovery(count: number): Promise<DiscoveryResult> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-bench-disc-'));
  try {
    const pluginsDir = path.join(tmp, 'plugins');
    const manifest = JSON.parse(readFileSync(path.join(testPluginDir(), 'manifest.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    for (let i = 0; i < count; i++) {
      const id = `bench-plugin-${String(i).padStart(4, '0')}`;
      const dir = path.join(pluginsDir, 'core', id);
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        path.join(dir, 'manifest.json'),
        JSON.stringify({ ...manifest, id, name: `Bench plugin ${i}` }, null, 2),
      );
      cpSync(path.join(testPluginDir(), 'mcp'), path.join(dir, 'mcp'), { recursive: true });
    }
    const database = await openDatabase({ databaseUrl: undefined, dataDir: path.join(tmp, 'data') });
    try {
      const registry = new PluginRegistry({
        db: database.db,
        logger: pino({ level: 'silent' }),
        pluginsDir,
        validator: new ManifestValidator(manifestSchemaPath(path.join(packageRoot(), 'plugins'))),
        defaultMaxConcurrentInstances: 10,
      });
      let t0 = performance.now();
      const report = await registry.scan();
      const firstScanMs = performance.now() - t0;
      t0 = performance.now();
      await registry.scan();
      const rescanMs = performance.now() - t0;
      return { plugins: report.plugins, ok: report.ok, firstScanMs, rescanMs };
    } finally {
      await database.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
