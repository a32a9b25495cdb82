import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A failed install is reported with its reason and not re-run on every call, but it is not permanent:
 * after a restart (or the retry window) the host tries again, so a transient failure (registry down)
 * heals. Organizations, keys and enablement survive the restart.
 */

const markerDir = mkdtempSync(path.join(os.tmpdir(), 'hay-marker-'));
const okFile = path.join(markerDir, 'registry-is-up');
const hosts: TestHost[] = [];
let folders: { dataDir: string; pluginsDir: string } | undefined;

afterAll(async () => {
  for (const h of hosts) await h.close();
  if (folders) {
    rmSync(folders.dataDir, { recursive: true, force: true });
    rmSync(folders.pluginsDir, { recursive: true, force: true });
  }
  rmSync(markerDir, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  expect(descendantPids()).toEqual([]);
});

it('retries a failed install after a restart and then serves the plugin', async () => {
  const first = await startTestHost({
    plugins: {
      'core/flaky-install': toolkitPlugin('flaky-install', {
        capabilities: {
          mcp: {
            connection: { type: 'local' },
            transport: 'stdio',
            startCommand: 'node server.mjs',
            installCommand: `node -e "if (!require('fs').existsSync('${okFile}')) { console.error('ETIMEDOUT registry.npmjs.org'); process.exit(1) }"`,
          },
        },
      }),
    },
  });
  hosts.push(first);
  const org = await first.createOrganization('flaky');
  await org.hay.plugins.enable.mutate({ pluginId: 'flaky-install', configuration: {} });
  const call = { pluginId: 'flaky-install', toolName: 'echo', arguments: { message: 'ok' } };
  for (let i = 0; i < 2; i++) {
    const err = await org.hay.plugins.invokeTool.mutate(call).then(
      () => undefined,
      (e: unknown) => e as { message: string; data?: { code?: string; hayCode?: string } },
    );
    expect(err?.data).toMatchObject({ code: 'PRECONDITION_FAILED', hayCode: 'INSTALL_FAILED' });
    expect(err?.message).toMatch(
      /install of plugin flaky-install failed: .*exited with code 1.*ETIMEDOUT registry\.npmjs\.org/,
    );
  }
  // the cause goes away; within the retry window the stored failure is still reported
  writeFileSync(okFile, '');
  await expect(org.hay.plugins.invokeTool.mutate(call)).rejects.toThrow(
    /install of plugin flaky-install failed/,
  );
  folders = await first.stop();

  const second = await startTestHost({ reuse: folders });
  hosts.push(second);
  const again = second.client(org.apiKey);
  expect((await again.plugins.get.query({ pluginId: 'flaky-install' })).enabled).toBe(true);
  expect((await again.plugins.invokeTool.mutate(call)).content).toEqual([{ type: 'text', text: 'ok' }]);
  expect((await again.plugins.list.query()).find((p) => p.id === 'flaky-install')?.install).toEqual({
    installed: true,
    built: true,
    error: null,
  });
});
