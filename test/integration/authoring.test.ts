import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { inject } from 'vitest';
import { REPO_PLUGINS_DIR, REPO_ROOT, startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';
import { detectSandboxLayers } from '../../src/runtime/sandbox/detect.js';

/**
 * What a plugin author and an operator meet first: the bundled test plugin served from a plugins folder
 * outside the repository (nothing resolves through the repo's node_modules), and configuration values
 * that name the plugin's private data folder.
 */

// each test starts a host on a fresh database and real plugin processes
vi.setConfig({ testTimeout: 120_000 });

const hosts: TestHost[] = [];
const temps: string[] = [];

afterAll(async () => {
  for (const h of hosts) await h.close();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  expect(descendantPids()).toEqual([]);
});

const detected = await detectSandboxLayers({
  cgroupV2Parent: '/sys/fs/cgroup/hay-test',
  cgroupV1Name: 'hay-test',
  timeoutMs: 5000,
});
const bwrap = detected.bubblewrap.ok && detected.identity.ok;
if (!bwrap)
  console.warn('SKIPPING the bubblewrap variant of the outside-the-repo test: bubblewrap unavailable');

/** A plugins folder in the system temp dir with the schema and copies of `core` plugins, no node_modules. */
function outsidePluginsDir(core: readonly string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hay-outside-'));
  temps.push(dir);
  expect(path.relative(REPO_ROOT, dir).startsWith('..')).toBe(true);
  cpSync(path.join(REPO_PLUGINS_DIR, 'base'), path.join(dir, 'base'), { recursive: true });
  mkdirSync(path.join(dir, 'custom'), { recursive: true });
  for (const id of core)
    cpSync(path.join(REPO_PLUGINS_DIR, 'core', id), path.join(dir, 'core', id), {
      recursive: true,
      filter: (src) => !['node_modules', 'dist'].includes(path.basename(src)),
    });
  return dir;
}

async function hostOn(pluginsDir: string, sandbox: 'off' | 'auto'): Promise<TestHost> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hay-outside-data-'));
  temps.push(dataDir);
  cpSync(inject('pgliteTemplateDir'), path.join(dataDir, 'pglite'), { recursive: true });
  const t = await startTestHost({ reuse: { dataDir, pluginsDir }, config: { sandbox } });
  hosts.push(t);
  return t;
}

describe('hay-plugin-test with HAY_PLUGINS_DIR outside the repository', () => {
  const variants: { sandbox: 'off' | 'auto'; skip: boolean }[] = [
    { sandbox: 'off', skip: false },
    { sandbox: 'auto', skip: !bwrap },
  ];
  for (const v of variants) {
    it.skipIf(v.skip)(
      `links the host's MCP SDK for its peer dependencies and answers echo (sandbox ${v.sandbox})`,
      async () => {
        const pluginsDir = outsidePluginsDir(['hay-plugin-test']);
        const t = await hostOn(pluginsDir, v.sandbox);
        const org = await t.createOrganization(`outside-${v.sandbox}`);
        await org.hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
        const result = await org.hay.plugins.invokeTool.mutate({
          pluginId: 'hay-plugin-test',
          toolName: 'echo',
          arguments: { message: 'from outside' },
        });
        expect(result).toMatchObject({ content: [{ type: 'text', text: 'from outside' }] });
        const link = path.join(
          pluginsDir,
          'core',
          'hay-plugin-test',
          'node_modules',
          '@modelcontextprotocol',
          'sdk',
        );
        expect(lstatSync(link).isSymbolicLink()).toBe(true);
        expect(existsSync(path.join(link, 'package.json'))).toBe(true);
        await t.close();
      },
    );
  }
});

describe('${HAY_PLUGIN_DATA_DIR} in configuration values', () => {
  const server = `
import { appendFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
const server = new McpServer({ name: 'memory-like', version: '1.0.0' });
server.registerTool('remember', { inputSchema: {} }, async () => {
  const file = process.env.MEMORY_FILE_PATH ?? '';
  appendFileSync(file, 'remembered\\n');
  return { content: [{ type: 'text', text: file }] };
});
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => void server.close().finally(() => process.exit(0)));
`;

  it('is replaced by the data folder as the process sees it, so a file path setting works', async () => {
    const t = await startTestHost({
      plugins: {
        'core/memory-like': {
          'manifest.json': {
            id: 'memory-like',
            name: 'Memory-like',
            version: '1.0.0',
            type: ['mcp-connector'],
            capabilities: { mcp: { transport: 'stdio', startCommand: 'node server.mjs' } },
            configSchema: { memoryFile: { type: 'string', required: true, env: 'MEMORY_FILE_PATH' } },
          },
          'package.json': { name: 'memory-like', version: '1.0.0', private: true, type: 'module' },
          'server.mjs': server,
        },
      },
    });
    hosts.push(t);
    const org = await t.createOrganization('memory');
    await org.hay.plugins.enable.mutate({
      pluginId: 'memory-like',
      configuration: { memoryFile: '${HAY_PLUGIN_DATA_DIR}/memory.jsonl' },
    });
    const result = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'memory-like',
      toolName: 'remember',
      arguments: {},
    });
    const hostFile = path.join(t.dataDir, 'plugin-data', org.organizationId, 'memory-like', 'memory.jsonl');
    expect(result).toMatchObject({ content: [{ type: 'text', text: hostFile }] });
    expect(readFileSync(hostFile, 'utf8')).toBe('remembered\n');
    // the stored configuration keeps the reference, not the expanded path
    const got = await org.hay.plugins.get.query({ pluginId: 'memory-like' });
    expect(got.configuration).toEqual({ memoryFile: '${HAY_PLUGIN_DATA_DIR}/memory.jsonl' });
  });
});

describe('a long install', () => {
  const install = `
import { existsSync } from 'node:fs';
console.log('fetching packages 1/3');
while (!existsSync('release')) await new Promise((r) => setTimeout(r, 20));
console.log('done');
`;

  it('shows its progress in plugins.get and answers "installing" when a call runs out of time', async () => {
    const t = await startTestHost({
      config: { callTimeoutMs: 1_500 },
      plugins: {
        'core/slow-install': toolkitPlugin(
          'slow-install',
          {
            capabilities: {
              mcp: {
                transport: 'stdio',
                startCommand: 'node server.mjs',
                installCommand: 'node install.mjs',
              },
            },
          },
          { 'install.mjs': install },
        ),
      },
    });
    hosts.push(t);
    const org = await t.createOrganization('slow');
    await org.hay.plugins.enable.mutate({ pluginId: 'slow-install', configuration: {} });
    const call = () =>
      org.hay.plugins.invokeTool.mutate({
        pluginId: 'slow-install',
        toolName: 'echo',
        arguments: { message: 'hi' },
      });
    const err = (await call().catch((e: unknown) => e)) as { data?: { hayCode?: string }; message: string };
    expect(err.data?.hayCode).toBe('PLUGIN_NOT_READY');
    expect(err.message).toMatch(
      /^plugin slow-install is still installing \(install step running for \d+ s, last output: fetching packages 1\/3\); retry later/,
    );
    const during = await org.hay.plugins.get.query({ pluginId: 'slow-install' });
    expect(during.installing).toMatchObject({ phase: 'install', lastLine: 'fetching packages 1/3' });
    expect(during.installing?.elapsedMs).toBeGreaterThan(0);
    expect(during.install.installed).toBe(false);

    writeFileSync(path.join(t.pluginsDir, 'core', 'slow-install', 'release'), '');
    await waitFor(
      async () => (await org.hay.plugins.get.query({ pluginId: 'slow-install' })).install.installed,
      'install to finish',
    );
    expect((await org.hay.plugins.get.query({ pluginId: 'slow-install' })).installing).toBeNull();
    expect(await call()).toMatchObject({ content: [{ type: 'text', text: 'hi' }] });
  });
});
