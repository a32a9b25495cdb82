import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT, startTestHost, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * The package as a dependency sees it (built dist/, resolved through package.json "exports"):
 * `hay-plugins/client` drives a running host exactly like the README's TypeScript snippet, and
 * `hay-plugins` exports the host, config, client and error classes.
 */

const run = promisify(execFile);
let t: TestHost;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'src', 'index.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm test does it in pretest)');
  t = await startTestHost({ corePlugins: ['hay-plugin-test'] });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every child process to exit');
  expect(descendantPids()).toEqual([]);
});

it("'hay-plugins/client' enables and invokes a tool as the README shows", async () => {
  const { apiKey } = await t.createOrganization('exports');
  const script = `
    import { createHayClient } from 'hay-plugins/client';
    const hay = createHayClient({ url: process.env.HAY_URL, apiKey: process.env.HAY_API_KEY });
    await hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    const result = await hay.plugins.invokeTool.mutate({ pluginId: 'hay-plugin-test', toolName: 'echo', arguments: { message: 'hi' } });
    let denied;
    try { await hay.admin.listOrganizations.query(); } catch (err) { denied = err.data.code; }
    process.stdout.write(JSON.stringify({ result, denied }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    env: { ...process.env, HAY_URL: t.url, HAY_API_KEY: apiKey },
  });
  expect(JSON.parse(stdout)).toEqual({
    result: { content: [{ type: 'text', text: 'hi' }], structuredContent: { message: 'hi' } },
    denied: 'FORBIDDEN',
  });
});

it("'hay-plugins' exports the host, configuration, client and error classes", async () => {
  const script = `
    const m = await import('hay-plugins');
    const names = ['createHost', 'loadConfig', 'createHayClient', 'HayError', 'NotFoundError', 'PreconditionError', 'isHayError'];
    process.stdout.write(JSON.stringify(Object.fromEntries(names.map((n) => [n, typeof m[n]]))));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT });
  expect(JSON.parse(stdout)).toEqual({
    createHost: 'function',
    loadConfig: 'function',
    createHayClient: 'function',
    HayError: 'function',
    NotFoundError: 'function',
    PreconditionError: 'function',
    isHayError: 'function',
  });
});
