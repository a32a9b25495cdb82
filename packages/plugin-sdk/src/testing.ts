/**
 * @hay/plugin-sdk/testing: runs a plugin folder against a real Hay host in the test's process (embedded
 * database in a temp folder, random port, sandbox as configured), enabled for one organization:
 *
 *   const h = await startPluginHost({ pluginDir: '.', configuration: { greeting: 'Hi' } });
 *   expect(await h.callText('greet', { name: 'Ada' })).toBe('Hi, Ada');
 *   await h.close();
 *
 * The host comes from the `hay-plugins` package (a devDependency of the plugin), or is passed as `host`.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** The parts of the `hay-plugins` package the harness uses. */
export interface HostModule {
  loadConfig(env: NodeJS.ProcessEnv, argv: readonly string[], overrides: Record<string, unknown>): unknown;
  createHost(config: never): Promise<{
    url: string;
    adminToken: string;
    start(): Promise<void>;
    close(): Promise<void>;
  }>;
}

export interface PluginHostOptions {
  /** The plugin folder (with manifest.json). It is copied (without node_modules/dist) into a temp plugins folder. */
  pluginDir: string;
  /** The organization's configuration for plugins.enable. */
  configuration?: Record<string, unknown>;
  /** Host settings (HostConfig fields), e.g. { callTimeoutMs: 5000 }. Default sandbox 'off', logs silent. */
  config?: Record<string, unknown>;
  /** The host package; default: `await import('hay-plugins')`. */
  host?: HostModule;
}

export interface PluginHost {
  url: string;
  pluginId: string;
  organizationId: string;
  /** The organization's API key (org admin). */
  apiKey: string;
  listTools(): Promise<{ name: string; description?: string; inputSchema?: unknown }[]>;
  call(tool: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** The call's text content, joined; throws when the result is an error. */
  callText(tool: string, args?: Record<string, unknown>): Promise<string>;
  /** Any tRPC procedure as the organization, e.g. trpc('plugins.get', {pluginId}). */
  trpc(procedure: string, input?: unknown, kind?: 'query' | 'mutation'): Promise<unknown>;
  /** Stops the host and removes its temp folders. Idempotent. */
  close(): Promise<void>;
}

/** A tRPC error answered by the host: `code` is the host's error code (docs/PLUGIN_API.md). */
export class HostCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HostCallError';
  }
}

export async function startPluginHost(options: PluginHostOptions): Promise<PluginHost> {
  const manifest = JSON.parse(readFileSync(path.join(options.pluginDir, 'manifest.json'), 'utf8')) as {
    id: string;
  };
  const hostModule = options.host ?? (await importHost(options.pluginDir));
  const root = mkdtempSync(path.join(os.tmpdir(), 'hay-plugin-test-'));
  const pluginsDir = path.join(root, 'plugins');
  const pluginCopy = path.join(pluginsDir, 'core', manifest.id);
  mkdirSync(path.join(pluginsDir, 'custom'), { recursive: true });
  cpSync(options.pluginDir, pluginCopy, {
    recursive: true,
    filter: (src) => !['node_modules', 'dist', '.git'].includes(path.basename(src)),
  });
  withoutTestOnlyDependencies(pluginCopy);
  const adminToken = `adm-${Math.random().toString(36).slice(2)}${Date.now()}`;
  const config = hostModule.loadConfig({}, [], {
    host: '127.0.0.1',
    port: 0,
    dataDir: path.join(root, 'data'),
    pluginsDir,
    sandbox: 'off',
    logLevel: 'silent',
    adminToken,
    ...options.config,
  });
  const host = await hostModule.createHost(config as never);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= host.close().finally(() => rmSync(root, { recursive: true, force: true }));
    return closed;
  };
  try {
    await host.start();
    const rpc = async (token: string, procedure: string, input: unknown, kind: 'query' | 'mutation') => {
      const url =
        kind === 'query'
          ? `${host.url}/trpc/${procedure}${input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`}`
          : `${host.url}/trpc/${procedure}`;
      const response = await fetch(url, {
        method: kind === 'query' ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(kind === 'mutation' ? { body: JSON.stringify(input ?? {}) } : {}),
      });
      const body = (await response.json()) as {
        result?: { data?: unknown };
        error?: { message?: string; data?: { hayCode?: string; code?: string } };
      };
      if (body.error)
        throw new HostCallError(
          body.error.data?.hayCode ?? body.error.data?.code ?? 'INTERNAL',
          body.error.message ?? 'error',
        );
      return body.result?.data;
    };
    const org = (await rpc(adminToken, 'admin.createOrganization', { name: 'plugin-test' }, 'mutation')) as {
      organizationId: string;
      apiKey: string;
    };
    await rpc(
      org.apiKey,
      'plugins.enable',
      { pluginId: manifest.id, configuration: options.configuration ?? {} },
      'mutation',
    );
    const call = (tool: string, args: Record<string, unknown> = {}) =>
      rpc(
        org.apiKey,
        'plugins.invokeTool',
        { pluginId: manifest.id, toolName: tool, arguments: args },
        'mutation',
      ) as Promise<CallToolResult>;
    return {
      url: host.url,
      pluginId: manifest.id,
      organizationId: org.organizationId,
      apiKey: org.apiKey,
      listTools: () =>
        rpc(org.apiKey, 'plugins.listTools', { pluginId: manifest.id }, 'query') as Promise<
          { name: string; description?: string; inputSchema?: unknown }[]
        >,
      call,
      async callText(tool, args) {
        const result = await call(tool, args);
        const text = result.content
          .map((c) => (c.type === 'text' ? c.text : ''))
          .filter((t) => t !== '')
          .join('\n');
        if (result.isError) throw new HostCallError('TOOL_ERROR', text);
        return text;
      },
      trpc: (procedure, input, kind = 'query') => rpc(org.apiKey, procedure, input, kind),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `hay-plugins` as the plugin folder resolves it (its devDependency), else as this package resolves it. */
async function importHost(pluginDir: string): Promise<HostModule> {
  let target = 'hay-plugins';
  try {
    target = pathToFileURL(
      createRequire(path.join(path.resolve(pluginDir), 'package.json')).resolve('hay-plugins'),
    ).href;
  } catch {
    // not a devDependency of the plugin: try our own resolution
  }
  try {
    return (await import(target)) as HostModule;
  } catch (err) {
    throw new Error(
      `@hay/plugin-sdk/testing needs the host package: add "hay-plugins" to the plugin's devDependencies or pass options.host (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

/**
 * devDependencies serve the author's tests, not the plugin at run time: in the copy the host serves, they
 * are dropped when there is no build step, so the host does not `npm install` them before the first call.
 */
function withoutTestOnlyDependencies(pluginCopy: string): void {
  const file = path.join(pluginCopy, 'package.json');
  if (!existsSync(file)) return;
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as {
    devDependencies?: unknown;
    scripts?: { build?: unknown };
  };
  if (pkg.devDependencies === undefined || pkg.scripts?.build !== undefined) return;
  delete pkg.devDependencies;
  writeFileSync(file, JSON.stringify(pkg, null, 2));
}

/** True when `dir` holds a plugin (manifest.json). */
export function isPluginDir(dir: string): boolean {
  return existsSync(path.join(dir, 'manifest.json'));
}
