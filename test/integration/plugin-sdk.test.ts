import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHost, loadConfig } from '../../src/index.js';
import { REPO_ROOT } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * The bundled SDK example (plugins/core/hello-sdk) run the way its author tests it: through
 * @hay/plugin-sdk/testing, which copies the plugin into a temp plugins folder (outside the repository)
 * and serves it from a real in-process host.
 */
type Testing = typeof import('../../packages/plugin-sdk/src/testing.js');
let testing: Testing;
const hostModule = {
  createHost,
  loadConfig,
} as unknown as import('../../packages/plugin-sdk/src/testing.js').HostModule;

beforeAll(async () => {
  // the example loads the SDK's built output (the root build makes it; build it here for vitest alone)
  await promisify(execFile)(
    process.execPath,
    [
      path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'packages/plugin-sdk/tsconfig.json',
    ],
    {
      cwd: REPO_ROOT,
      timeout: 120_000,
    },
  );
  testing = (await import('@hay/plugin-sdk/testing' as string)) as Testing;
}, 150_000);

afterAll(async () => {
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  expect(descendantPids()).toEqual([]);
});

describe('hello-sdk through @hay/plugin-sdk/testing', () => {
  it('serves typed tools, typed configuration and the declared platform API from a real host', async () => {
    const h = await testing.startPluginHost({
      pluginDir: path.join(REPO_ROOT, 'plugins', 'core', 'hello-sdk'),
      configuration: { greeting: 'Hi', style: 'shout' },
      host: hostModule,
    });
    try {
      const tools = await h.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['greet', 'notify']);
      expect(tools.find((t) => t.name === 'greet')?.inputSchema).toMatchObject({
        type: 'object',
        properties: { name: { type: 'string', minLength: 1 } },
        required: ['name'],
      });
      expect(await h.callText('greet', { name: 'Ada' })).toBe('HI, ADA!');
      // arguments are validated against the schema the SDK derived
      await expect(h.call('greet', { name: '' })).rejects.toMatchObject({ code: 'ARGUMENTS_INVALID' });
      // the typed email client reaches the host's platform API (no SMTP here: its error comes back)
      const notify = await h.call('notify', { to: 'team@example.com', name: 'Ada' });
      expect(notify.isError).toBe(true);
      expect(notify.content).toEqual([
        { type: 'text', text: 'the email API is not configured on this host (set HAY_SMTP_URL)' },
      ]);
    } finally {
      await h.close();
    }
  }, 180_000); // a fresh embedded database is migrated by the harness's host
});
