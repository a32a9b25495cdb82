import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

vi.setConfig({ testTimeout: 120_000 });

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
    const org = await h.createOrganization('deps');
    await org.hay.plugins.enable.mutate({ pluginId: 'with-deps', configuration: {} });
    const r = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'with-deps',
      toolName: 'echo',
      arguments: { message: 'hi' },
    });
    expect(r).toMatchObject({ content: [{ type: 'text', text: 'hi' }] });
    const dir = path.join(h.pluginsDir, 'core', 'with-deps');
    expect(existsSync(path.join(dir, 'node_modules', 'local-dep'))).toBe(true);
    expect(existsSync(path.join(dir, 'package-lock.json'))).toBe(false);
    // a rescan resolves once staging settles: the installed folder is still the one version
    await h.admin.admin.rescanPlugins.mutate();
    const versions = (await h.admin.admin.pluginVersions.query({ pluginId: 'with-deps' })).versions;
    expect(versions.map((v) => [v.version, v.state])).toEqual([['1.0.0', 'ready']]);
  });
});
