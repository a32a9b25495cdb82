import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { createHayClient, type HayClient } from '../../src/api/client.js';
import { loadConfig, type HostConfig } from '../../src/config.js';
import { createHost, type Host } from '../../src/host.js';
import type { Logger } from '../../src/logger.js';
import { packageRoot } from '../../src/paths.js';

export const REPO_ROOT = packageRoot();
export const REPO_PLUGINS_DIR = path.join(REPO_ROOT, 'plugins');

/** Files of one plugin folder: relative path -> content (objects are written as JSON). */
export type PluginFiles = Record<string, string | object>;

export interface TestHostOptions {
  /** Merged over the test defaults (port 0, sandbox off, silent logs, a fixed admin token). */
  config?: Partial<HostConfig>;
  /**
   * Builds an isolated plugins directory (a temp folder with `base/`, a `node_modules` link to the repo's
   * so plugin servers resolve the MCP SDK, these core plugins copied without their node_modules, and
   * `plugins`). Unset together with `plugins`: the repository's own `plugins/` is used as is.
   */
  corePlugins?: readonly string[];
  /** Extra plugin folders by path under the plugins directory, e.g. `core/slow` or `custom/<org>/x`. */
  plugins?: Record<string, PluginFiles>;
  /** 'pglite' (default): a copy of the migrated template; or a PostgreSQL URL from createTestDatabase. */
  databaseUrl?: string;
  logger?: Logger;
  hostEnv?: NodeJS.ProcessEnv;
  /**
   * Reopen the data of an earlier test host (e.g. to test a restart): its `dataDir` and `pluginsDir`.
   * Folders passed in are left in place by close().
   */
  reuse?: { dataDir: string; pluginsDir: string };
}

export interface TestHost {
  host: Host;
  /** Base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  adminToken: string;
  pluginsDir: string;
  dataDir: string;
  /** A typed client with the admin token. */
  admin: HayClient;
  /** A typed client with `apiKey`. */
  client(apiKey: string): HayClient;
  /** Creates an organization; returns its id, its org-admin key and a client with that key. */
  createOrganization(name: string): Promise<{ organizationId: string; apiKey: string; hay: HayClient }>;
  /** Writes a plugin folder under the plugins directory (only for an isolated directory). */
  writePlugin(relPath: string, files: PluginFiles): string;
  /** Closes the host and removes the temp folders it created. Idempotent. */
  close(): Promise<void>;
  /** Closes the host but keeps its folders; returns them for `reuse`. */
  stop(): Promise<{ dataDir: string; pluginsDir: string }>;
}

/** Writes `files` into `dir` (creating folders); objects become pretty JSON. */
export function writePluginFiles(dir: string, files: PluginFiles): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
}

/** A temp plugins directory with the schema, a link to the repo's node_modules and the chosen core plugins. */
export function makePluginsDir(
  corePlugins: readonly string[],
  plugins: Record<string, PluginFiles> = {},
): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hay-plugins-'));
  cpSync(path.join(REPO_PLUGINS_DIR, 'base'), path.join(dir, 'base'), { recursive: true });
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  mkdirSync(path.join(dir, 'core'), { recursive: true });
  mkdirSync(path.join(dir, 'custom'), { recursive: true });
  for (const id of corePlugins) {
    cpSync(path.join(REPO_PLUGINS_DIR, 'core', id), path.join(dir, 'core', id), {
      recursive: true,
      filter: (src) => path.basename(src) !== 'node_modules',
    });
  }
  for (const [rel, files] of Object.entries(plugins)) writePluginFiles(path.join(dir, rel), files);
  return dir;
}

/**
 * Starts a real host for a test file: temp data dir, its own PGlite (copied from the suite's migrated
 * template) unless `databaseUrl` is given, port 0 on 127.0.0.1, sandbox off, silent logs.
 */
export async function startTestHost(options: TestHostOptions = {}): Promise<TestHost> {
  const reused = options.reuse;
  const dataDir = reused?.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'hay-host-'));
  const isolated = reused !== undefined || options.corePlugins !== undefined || options.plugins !== undefined;
  const ownsPluginsDir = reused === undefined && isolated;
  const pluginsDir =
    reused?.pluginsDir ??
    (isolated ? makePluginsDir(options.corePlugins ?? [], options.plugins) : REPO_PLUGINS_DIR);
  if (options.databaseUrl === undefined && !reused)
    cpSync(inject('pgliteTemplateDir'), path.join(dataDir, 'pglite'), { recursive: true });
  const config = loadConfig({}, [], {
    port: 0,
    host: '127.0.0.1',
    sandbox: 'off',
    // these suites test the API, not isolation: uploaded plugins run unsandboxed by explicit opt-out
    allowUnsandboxedTenantCode: true,
    // hot reload (the product default) is tested where a suite asks for it: hosts in parallel suites
    // would otherwise react to each other's writes below a shared plugins folder
    hotReload: 'off',
    adminToken: `adm-${Math.random().toString(36).slice(2)}`,
    logLevel: 'silent',
    dataDir,
    pluginsDir,
    databaseUrl: options.databaseUrl,
    stopGraceMs: 500,
    killGraceMs: 500,
    shutdownDrainMs: 2_000,
    ...options.config,
  });
  const host = await createHost(config, {
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.hostEnv ? { hostEnv: options.hostEnv } : {}),
  });
  let closing: Promise<void> | undefined;
  const cleanup = () => {
    if (!reused) rmSync(dataDir, { recursive: true, force: true });
    if (ownsPluginsDir) rmSync(pluginsDir, { recursive: true, force: true });
  };
  try {
    await host.start();
  } catch (err) {
    await host.close().catch(() => undefined);
    cleanup();
    throw err;
  }
  const url = host.url;
  const client = (apiKey: string) => createHayClient({ url, apiKey });
  const admin = client(host.adminToken);
  return {
    host,
    url,
    adminToken: host.adminToken,
    pluginsDir,
    dataDir,
    admin,
    client,
    async createOrganization(name) {
      const { organizationId, apiKey } = await admin.admin.createOrganization.mutate({ name });
      return { organizationId, apiKey, hay: client(apiKey) };
    },
    writePlugin(relPath, files) {
      if (!isolated)
        throw new Error('writePlugin needs an isolated plugins directory (pass corePlugins or plugins)');
      const dir = path.join(pluginsDir, relPath);
      writePluginFiles(dir, files);
      return dir;
    },
    close() {
      closing ??= host.close().finally(cleanup);
      return closing;
    },
    async stop() {
      closing ??= host.close();
      await closing;
      return { dataDir, pluginsDir };
    },
  };
}

/**
 * An MCP stdio server for test plugins (resolves the SDK through the plugins dir's node_modules link):
 * `echo {message}`, `fail` (an isError result), `hang` (never answers), `gate {file}` (answers once
 * `file` exists, so a test holds a call open without timing), `count {n: integer >= 1}` (strict schema).
 */
export const TOOLKIT_SERVER = `
import { existsSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: process.env.HAY_PLUGIN_ID ?? 'toolkit', version: '1.0.0' });
server.registerTool('echo', { inputSchema: { message: z.string() } }, async ({ message }) => ({
  content: [{ type: 'text', text: message }],
}));
server.registerTool('fail', { inputSchema: {} }, async () => ({
  isError: true,
  content: [{ type: 'text', text: 'the upstream system said no' }],
}));
server.registerTool('hang', { inputSchema: {} }, () => new Promise(() => {}));
server.registerTool('gate', { inputSchema: { file: z.string() } }, async ({ file }) => {
  while (!existsSync(file)) await new Promise((r) => setTimeout(r, 10));
  return { content: [{ type: 'text', text: 'opened' }] };
});
server.registerTool('count', { inputSchema: { n: z.number().int().min(1) } }, async ({ n }) => ({
  content: [{ type: 'text', text: String(n) }],
}));
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;

/** Files of a toolkit plugin with id `id`; `manifest` is merged over the default manifest. */
export function toolkitPlugin(
  id: string,
  manifest: Record<string, unknown> = {},
  extra: PluginFiles = {},
): PluginFiles {
  return {
    'manifest.json': {
      id,
      name: `Toolkit ${id}`,
      version: '1.0.0',
      description: 'test plugin',
      type: ['mcp-connector'],
      capabilities: {
        mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node server.mjs' },
      },
      ...manifest,
    },
    'package.json': { name: id, version: '1.0.0', private: true, type: 'module' },
    'server.mjs': TOOLKIT_SERVER,
    ...extra,
  };
}
