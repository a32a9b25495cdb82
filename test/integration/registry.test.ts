import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizations, pluginInstances } from '../../src/db/schema.js';
import { manifestSchemaPath, ManifestValidator } from '../../src/manifest/validator.js';
import { PluginInstaller } from '../../src/registry/installer.js';
import { PluginRegistry, type RegisteredPlugin } from '../../src/registry/plugin-registry.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.js';
import { descendantPids } from '../helpers/processes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const logger = pino({ level: 'silent' });
const validator = new ManifestValidator(manifestSchemaPath(path.join(ROOT, 'plugins')));

function manifest(id: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    name: `Plugin ${id}`,
    version: '1.0.0',
    type: ['mcp-connector'],
    capabilities: {
      mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node index.js' },
    },
    ...extra,
  };
}

function writePlugin(dir: string, m: unknown, files: Record<string, string> = {}) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'manifest.json'), typeof m === 'string' ? m : JSON.stringify(m, null, 2));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
}

describe.each(DB_KINDS)('plugin registry (%s)', (kind) => {
  let t: TestDatabase;
  let pluginsDir: string;
  let registry: PluginRegistry;
  const orgA = '11111111-1111-4111-8111-111111111111';
  const orgB = '22222222-2222-4222-8222-222222222222';

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    pluginsDir = mkdtempSync(path.join(os.tmpdir(), 'hay-reg-'));
    cpSync(path.join(ROOT, 'plugins/base'), path.join(pluginsDir, 'base'), { recursive: true });
    writePlugin(path.join(pluginsDir, 'core/alpha'), manifest('alpha'), { 'index.js': '// alpha' });
    writePlugin(path.join(pluginsDir, 'core/beta'), manifest('beta'));
    writePlugin(path.join(pluginsDir, 'core/beta-copy'), manifest('beta'));
    writePlugin(path.join(pluginsDir, 'core/broken'), { ...manifest('broken'), version: 'one' });
    writePlugin(path.join(pluginsDir, 'core/badjson'), '{ "id": "badjson", }');
    mkdirSync(path.join(pluginsDir, 'core/empty'), { recursive: true });
    writePlugin(path.join(pluginsDir, `custom/${orgA}/mine`), manifest('mine'));
    writePlugin(path.join(pluginsDir, `custom/${orgA}/alpha`), manifest('alpha'));
    writePlugin(path.join(pluginsDir, `custom/${orgB}/mine`), manifest('mine', { version: '2.0.0' }));
    mkdirSync(path.join(pluginsDir, 'custom/not-an-org/x'), { recursive: true });
    registry = new PluginRegistry({
      db: t.database.db,
      logger,
      pluginsDir,
      validator,
      defaultMaxConcurrentInstances: 10,
    });
  });

  afterAll(async () => {
    await t.dispose();
    rmSync(pluginsDir, { recursive: true, force: true });
    expect(descendantPids()).toEqual([]);
  });

  it('discovers core and custom plugins and records invalid ones with their error', async () => {
    const report = await registry.scan();
    const ok = registry
      .listAll()
      .filter((p) => p.status === 'ok')
      .map((p) => p.relPath);
    expect(ok).toEqual(['core/alpha', 'core/beta', `custom/${orgA}/mine`, `custom/${orgB}/mine`]);
    const broken = registry.get(null, 'broken');
    expect(broken?.status).toBe('invalid');
    expect(broken?.validationError).toMatch(/core\/broken\/manifest\.json: \/version must match pattern/);
    expect(registry.get(null, 'badjson')?.validationError).toMatch(/invalid JSON at line 1/);
    expect(registry.get(null, 'empty')?.validationError).toMatch(
      /core\/empty\/manifest\.json: file not found/,
    );
    expect(report.skipped).toEqual(
      expect.arrayContaining([
        { relPath: 'core/beta-copy', reason: 'duplicate plugin id "beta" (already used by core/beta)' },
        { relPath: 'custom/not-an-org', reason: 'folder name is not an organization id (UUID)' },
      ]),
    );
  });

  it('scopes custom ids to their organization and never lets them shadow a core id', () => {
    expect(registry.get(orgA, 'mine')?.organizationId).toBe(orgA);
    expect(registry.get(orgB, 'mine')?.version).toBe('2.0.0');
    expect(registry.get(null, 'mine')).toBeUndefined();
    expect(registry.get('33333333-3333-4333-8333-333333333333', 'mine')).toBeUndefined();
    const alphaForA = registry.get(orgA, 'alpha');
    expect(alphaForA?.sourceType).toBe('core');
    const shadow = registry.listAll().find((p) => p.relPath === `custom/${orgA}/alpha`);
    expect(shadow?.status).toBe('invalid');
    expect(shadow?.validationError).toBe('plugin id "alpha" is reserved by a core plugin');
    expect(registry.list(orgB).map((p) => p.relPath)).not.toContain(`custom/${orgA}/mine`);
  });

  it('detects a changed checksum, resets install state and tells listeners', async () => {
    const alpha = registry.get(null, 'alpha') as RegisteredPlugin;
    await registry.setInstallState(alpha.key, alpha.checksum, { installed: true, built: true });
    expect(registry.get(null, 'alpha')?.installed).toBe(true);
    const changed: string[] = [];
    registry.on('changed', (p) => changed.push(p.pluginId));
    const unchanged = await registry.scan();
    expect(unchanged.changed).toEqual([]);
    writeFileSync(path.join(pluginsDir, 'core/alpha/index.js'), '// alpha v2');
    const report = await registry.scan();
    expect(report.changed).toEqual(['core/alpha']);
    expect(changed).toEqual(['alpha']);
    const after = registry.get(null, 'alpha');
    expect(after?.checksum).not.toBe(alpha.checksum);
    expect(after?.installed).toBe(false);
    expect(after?.key).toBe(alpha.key);
  });

  it('marks a vanished folder missing and keeps organization configuration', async () => {
    const [org] = await t.database.db.insert(organizations).values({ name: 'b' }).returning();
    const mine = registry.get(orgB, 'mine') as RegisteredPlugin;
    await t.database.db.insert(pluginInstances).values({
      organizationId: org!.id,
      pluginRegistryId: mine.key,
      enabled: true,
      configuration: { x: 1 },
    });
    const missing: string[] = [];
    registry.on('missing', (p) => missing.push(p.relPath));
    rmSync(path.join(pluginsDir, `custom/${orgB}/mine`), { recursive: true });
    const report = await registry.scan();
    expect(report.missing).toEqual([`custom/${orgB}/mine`]);
    expect(missing).toEqual([`custom/${orgB}/mine`]);
    expect(registry.get(orgB, 'mine')?.status).toBe('missing');
    const rows = await t.database.db.select().from(pluginInstances);
    expect(rows.map((r) => [r.pluginRegistryId, r.configuration])).toEqual([[mine.key, { x: 1 }]]);
  });

  it('lets the next folder with a duplicate id take over when the first one goes', async () => {
    const before = registry.get(null, 'beta') as RegisteredPlugin;
    rmSync(path.join(pluginsDir, 'core/beta'), { recursive: true });
    await registry.scan();
    const after = registry.get(null, 'beta');
    expect([after?.relPath, after?.status, after?.key]).toEqual(['core/beta-copy', 'ok', before.key]);
  });

  describe('install and build', () => {
    const makeInstaller = (timeoutMs = 20_000) =>
      new PluginInstaller({
        registry,
        logger,
        installTimeoutMs: timeoutMs,
        buildTimeoutMs: timeoutMs,
        killGraceMs: 100,
        retryFailedAfterMs: 60_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        // core plugins only here: their steps never reach the tenant sandbox
        sandbox: {
          assertTenantAllowed: () => undefined,
          prepare: () => Promise.reject(new Error('core plugin steps must not use the tenant sandbox')),
        },
        tenantEnv: {},
        tenantLimits: { memoryMb: 0, cpuPercent: 0, maxProcesses: 0, maxOpenFiles: 0 },
        registryHost: 'registry.npmjs.org',
        hostPaths: [],
      });
    const spec = (id: string) => {
      const p = registry.get(null, id);
      if (!p) throw new Error(`no plugin ${id}`);
      const s = registry.toSpec(p);
      if (!s) throw new Error(`plugin ${id} not runnable: ${p.validationError}`);
      return s;
    };

    beforeAll(async () => {
      const counter = path.join(pluginsDir, 'runs.log');
      writePlugin(
        path.join(pluginsDir, 'core/builds'),
        manifest('builds', {
          capabilities: {
            mcp: {
              connection: { type: 'local' },
              startCommand: 'node index.js',
              buildCommand: 'node build.js',
            },
          },
        }),
        {
          'build.js': `require('fs').appendFileSync(${JSON.stringify(counter)}, 'x'); setTimeout(() => {}, 300);`,
          'package.json': '{}',
        },
      );
      writePlugin(
        path.join(pluginsDir, 'core/fails'),
        manifest('fails', {
          capabilities: {
            mcp: {
              connection: { type: 'local' },
              startCommand: 'node index.js',
              buildCommand: 'node fail.js',
            },
          },
        }),
        { 'fail.js': 'console.error("compile error: missing semicolon"); process.exit(3);' },
      );
      writePlugin(
        path.join(pluginsDir, 'core/hangs'),
        manifest('hangs', {
          capabilities: {
            mcp: {
              connection: { type: 'local' },
              startCommand: 'node index.js',
              installCommand: 'node hang.js',
            },
          },
        }),
        { 'hang.js': 'setInterval(() => {}, 1000);' },
      );
      writePlugin(path.join(pluginsDir, 'core/plain'), manifest('plain'), { 'index.js': '' });
      appendFileSync(counter, '');
      await registry.scan();
    });

    it('builds once for concurrent requests and records success', async () => {
      const installer = makeInstaller();
      await Promise.all([
        installer.ensureReady(spec('builds')),
        installer.ensureReady(spec('builds')),
        installer.ensureReady(spec('builds')),
      ]);
      expect(readFileSync(path.join(pluginsDir, 'runs.log'), 'utf8')).toBe('x');
      const p = registry.get(null, 'builds');
      expect([p?.installed, p?.built, p?.buildError]).toEqual([true, true, null]);
      await installer.ensureReady(spec('builds'));
      expect(readFileSync(path.join(pluginsDir, 'runs.log'), 'utf8')).toBe('x');
    });

    it('a plugin with nothing to install or build is ready without running anything', async () => {
      await makeInstaller().ensureReady(spec('plain'));
      expect(registry.get(null, 'plain')?.built).toBe(true);
    });

    it('stores a failed build with the command and output tail', async () => {
      const installer = makeInstaller();
      await expect(installer.ensureReady(spec('fails'))).rejects.toMatchObject({
        code: 'BUILD_FAILED',
        message: expect.stringMatching(
          /`node fail.js` exited with code 3; output: compile error: missing semicolon/,
        ),
      });
      const p = registry.get(null, 'fails');
      expect(p?.built).toBe(false);
      expect(p?.buildError).toMatch(/exited with code 3/);
      // remembered: the next request fails at once with the stored reason
      await expect(installer.ensureReady(spec('fails'))).rejects.toMatchObject({ code: 'BUILD_FAILED' });
    });

    it('times out a hanging install, kills it and never marks the plugin installed', async () => {
      await expect(makeInstaller(300).ensureReady(spec('hangs'))).rejects.toMatchObject({
        code: 'INSTALL_FAILED',
        message: expect.stringMatching(/`node hang.js` timed out after \d+ ms/),
      });
      const p = registry.get(null, 'hangs');
      expect([p?.installed, p?.built]).toEqual([false, false]);
      expect(descendantPids()).toEqual([]);
    });
  });
});

/**
 * A scan requested while one runs must see the folders as they are when it was requested (an upload or
 * rollback renames folders, then awaits a scan, while the watcher's scan may already be reading them).
 */
describe.each(DB_KINDS)('a scan requested during a scan (%s)', (kind) => {
  let t: TestDatabase;
  let pluginsDir: string;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
    pluginsDir = mkdtempSync(path.join(os.tmpdir(), 'hay-reg-'));
    cpSync(path.join(ROOT, 'plugins/base'), path.join(pluginsDir, 'base'), { recursive: true });
    writePlugin(path.join(pluginsDir, 'core/alpha'), manifest('alpha'), { 'index.js': '// one' });
  });
  afterAll(async () => {
    await t.dispose();
    rmSync(pluginsDir, { recursive: true, force: true });
  });

  it('runs after the running scan instead of sharing its stale view', async () => {
    let during: Promise<unknown> | undefined;
    let changeNow = false;
    const registry: PluginRegistry = new PluginRegistry({
      db: t.database.db,
      logger,
      pluginsDir,
      validator,
      defaultMaxConcurrentInstances: 10,
      // runs inside a scan once every folder was read: the change and the new request come after that
      crossCheck: () => {
        if (changeNow) {
          changeNow = false;
          writeFileSync(path.join(pluginsDir, 'core/alpha/index.js'), '// two');
          during = registry.scan();
        }
        return new Map();
      },
    });
    await registry.scan();
    const before = registry.get(null, 'alpha')?.checksum;
    changeNow = true;
    await registry.scan();
    expect(during).toBeDefined();
    await during;
    const after = registry.get(null, 'alpha')?.checksum;
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });
});
