import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { HostConfig } from '../../src/config.js';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

vi.setConfig({ testTimeout: 120_000 });

/** A test host with one core stdio plugin whose install step (and, optionally, start) is `files`. */
function hostWithInstallStep(
  id: string,
  files: Record<string, string>,
  opts: { startCommand?: string; config?: Partial<HostConfig> } = {},
): Promise<TestHost> {
  return startTestHost({
    plugins: {
      [`core/${id}`]: toolkitPlugin(
        id,
        {
          version: '1.0.0',
          capabilities: {
            mcp: {
              transport: 'stdio',
              startCommand: opts.startCommand ?? 'node server.mjs',
              installCommand: 'node install.mjs',
            },
          },
        },
        files,
      ),
    },
    ...(opts.config ? { config: opts.config } : {}),
  });
}

/** A new organization enables `id`, and its first echo call answers. */
async function enableAndEcho(h: TestHost, orgName: string, id: string) {
  const org = await h.createOrganization(orgName);
  await org.hay.plugins.enable.mutate({ pluginId: id, configuration: {} });
  const r = await org.hay.plugins.invokeTool.mutate({
    pluginId: id,
    toolName: 'echo',
    arguments: { message: 'hi' },
  });
  expect(r).toMatchObject({ content: [{ type: 'text', text: 'hi' }] });
}

/**
 * With the watcher on (the product default), the host's own install step must not look like a change of
 * the plugin: it writes no lockfile into the folder, so the first call is served by the one version staged
 * and nothing is restaged.
 */
describe('hot reload and the default install step', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await startTestHost({
      plugins: {
        'core/with-deps': toolkitPlugin(
          'with-deps',
          { version: '1.0.0' },
          {
            'package.json': {
              name: 'with-deps',
              version: '1.0.0',
              type: 'module',
              private: true,
              dependencies: { 'local-dep': 'file:./local-dep' },
            },
            'local-dep/package.json': { name: 'local-dep', version: '1.0.0', main: 'index.js' },
            'local-dep/index.js': 'module.exports = 42;\n',
          },
        ),
      },
      config: { hotReload: 'on', watchDebounceMs: 100 },
    });
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('installs without writing package-lock.json and keeps one version', async () => {
    await enableAndEcho(h, 'deps', 'with-deps');
    const dir = path.join(h.pluginsDir, 'core', 'with-deps');
    expect(existsSync(path.join(dir, 'node_modules', 'local-dep'))).toBe(true);
    expect(existsSync(path.join(dir, 'package-lock.json'))).toBe(false);
    // a rescan resolves once staging settles: the installed folder is still the one version
    await h.admin.admin.rescanPlugins.mutate();
    const versions = (await h.admin.admin.pluginVersions.query({ pluginId: 'with-deps' })).versions;
    expect(versions.map((v) => [v.version, v.state])).toEqual([['1.0.0', 'ready']]);
  });
});

/**
 * An install step that writes into its own folder (outside node_modules and dist) changes the folder's
 * checksum: staging takes what the step left, so the version the first call ran becomes ready instead of
 * staging waiting for a change that never comes (the watcher is off here, as in the test host default).
 */
describe('an install step that writes into the plugin folder', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await hostWithInstallStep('writes-at-install', {
      'install.mjs': "import { writeFileSync } from 'node:fs';\nwriteFileSync('generated.txt', 'x');\n",
    });
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('serves the first call and makes the version it ran ready', async () => {
    await enableAndEcho(h, 'writes', 'writes-at-install');
    expect(existsSync(path.join(h.pluginsDir, 'core', 'writes-at-install', 'generated.txt'))).toBe(true);
    // the first call ran the registry's folder; staging it starts once the instance runs and ends later
    const readyVersions = async () =>
      (await h.admin.admin.pluginVersions.query({ pluginId: 'writes-at-install' })).versions
        .filter((v) => v.state === 'ready')
        .map((v) => v.version);
    await waitFor(async () => (await readyVersions()).length > 0, 'a ready version of writes-at-install');
    expect(await readyVersions()).toEqual(['1.0.0']);
    // the kept copy holds what the install step left
    const kept = readdirSync(path.join(h.dataDir, 'plugin-versions'), { recursive: true, encoding: 'utf8' });
    expect(kept.filter((f) => path.basename(f) === 'generated.txt')).toHaveLength(1);
  });
});

/**
 * Only what the host's own install/build step left is taken: a write into the folder by anything else
 * (here the plugin's own process, once started from the registry's folder) is a change of the plugin,
 * never recorded under the checksum the folder had before it.
 */
describe('a plugin folder changed after its install step', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await hostWithInstallStep(
      'changes-after-install',
      {
        'install.mjs': "import { writeFileSync } from 'node:fs';\nwriteFileSync('generated.txt', 'x');\n",
        'start.mjs':
          "import { writeFileSync } from 'node:fs';\ntry { writeFileSync('started.txt', 'x'); } catch {}\nawait import('./server.mjs');\n",
      },
      { startCommand: 'node start.mjs' },
    );
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('stages the changed folder under its own checksum, not the one before the change', async () => {
    await enableAndEcho(h, 'changes', 'changes-after-install');
    // the rescan sees the changed folder and resolves once every stage (the one the call started too) ends
    await h.admin.admin.rescanPlugins.mutate();
    const current = h.host.services.registry.get(null, 'changes-after-install')?.checksum;
    const versions = (await h.admin.admin.pluginVersions.query({ pluginId: 'changes-after-install' }))
      .versions;
    expect(versions.filter((v) => v.state === 'ready').map((v) => [v.version, v.checksum])).toEqual([
      ['1.0.0', current],
    ]);
  });
});

/**
 * With the watcher on, an install step that writes something new into the folder on every run (a
 * timestamp) must not look like a change of the plugin: otherwise each install triggers a rescan, a new
 * checksum and another install, and the first call fails with "kept changing state".
 */
describe('hot reload and an install step that writes into the plugin folder', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await hostWithInstallStep(
      'stamps-at-install',
      {
        'install.mjs':
          "import { writeFileSync } from 'node:fs';\nwriteFileSync('stamp.txt', `${Date.now()} ${Math.random()}`);\n",
      },
      { config: { hotReload: 'on', watchDebounceMs: 100 } },
    );
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('serves the first call and keeps one version under the checksum of the source', async () => {
    const registered = h.host.services.registry.get(null, 'stamps-at-install')?.checksum;
    await enableAndEcho(h, 'stamps', 'stamps-at-install');
    expect(existsSync(path.join(h.pluginsDir, 'core', 'stamps-at-install', 'stamp.txt'))).toBe(true);
    // a rescan resolves once every stage ends; the step's own write is not a change
    await h.admin.admin.rescanPlugins.mutate();
    expect(h.host.services.registry.get(null, 'stamps-at-install')?.checksum).toBe(registered);
    const versions = (await h.admin.admin.pluginVersions.query({ pluginId: 'stamps-at-install' })).versions;
    expect(versions.map((v) => [v.version, v.state, v.checksum])).toEqual([['1.0.0', 'ready', registered]]);
  });
});
