import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { HayPluginManifest } from '../../src/manifest/types.js';
import { McpConnectionFactory } from '../../src/runtime/client/connection-factory.js';
import { PluginEnvironment } from '../../src/runtime/plugin-env.js';
import type {
  CallToolResult,
  PluginConnection,
  PluginSpec,
  SandboxWrapper,
} from '../../src/runtime/ports.js';
import { NoSandbox } from '../../src/runtime/process/no-sandbox.js';
import { ProcessManager } from '../../src/runtime/process/process-manager.js';
import { detectSandboxLayers } from '../../src/runtime/sandbox/detect.js';
import { createSandbox, SANDBOX_DATA_DIR } from '../../src/runtime/sandbox/index.js';
import type { PlatformTokens } from '../../src/security/platform-token.js';
import type { PluginSettingsService } from '../../src/tenancy/plugin-settings.js';
import { descendantPids, waitFor } from '../helpers/processes.js';
import { DEFAULT_LIMITS, FixedRemote } from '../fixtures/servers/factory-harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const pluginSource = path.join(here, '..', '..', 'plugins', 'core', 'filesystem');
const logger = createLogger({ level: 'silent' });

const detected = await detectSandboxLayers({
  cgroupV2Parent: '/sys/fs/cgroup/hay-test',
  cgroupV1Name: 'hay-test',
  timeoutMs: 5000,
});
const noBwrap = !detected.bubblewrap.ok || !detected.identity.ok;
if (noBwrap) console.warn('SKIPPING the sandboxed filesystem-plugin test: bubblewrap is unavailable');

let root: string;
let pluginDir: string;
let manifest: HayPluginManifest;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'hay-roots-'));
  chmodSync(root, 0o755);
  pluginDir = path.join(root, 'filesystem');
  cpSync(pluginSource, pluginDir, {
    recursive: true,
    filter: (src) => !src.includes(`${path.sep}node_modules`),
  });
  await promisify(execFile)('npm', ['install', '--no-audit', '--no-fund'], {
    cwd: pluginDir,
    timeout: 120_000,
  });
  manifest = JSON.parse(readFileSync(path.join(pluginDir, 'manifest.json'), 'utf8')) as HayPluginManifest;
}, 150_000);

afterAll(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
  await waitFor(() => descendantPids().length === 0, 'no leftover child processes');
  expect(descendantPids()).toEqual([]);
  if (root) rmSync(root, { recursive: true, force: true });
});

function pluginSpec(): PluginSpec {
  return {
    pluginKey: 'core:filesystem',
    pluginId: 'filesystem',
    version: manifest.version,
    checksum: 'test',
    rootDir: pluginDir,
    sourceType: 'core',
    organizationId: null,
    manifest,
    maxConcurrentInstances: 1,
  };
}

/** The production environment builder, with configuration and token issuing stubbed (none are used here). */
function environment(pluginDataRoot: string): PluginEnvironment {
  const settings = { runtimeValues: () => Promise.resolve({}) } as unknown as PluginSettingsService;
  const tokens = { issue: () => ({ token: 'test-token' }) } as unknown as PlatformTokens;
  return new PluginEnvironment({
    settings,
    tokens,
    apiUrl: 'http://127.0.0.1:1',
    hostEnv: process.env,
    operatorAllowedEnv: [],
    dataDirFor: (orgId, spec) => path.join(pluginDataRoot, orgId, spec.pluginId),
  });
}

function factoryWith(sandbox: SandboxWrapper, pluginDataRoot: string): McpConnectionFactory {
  const processes = new ProcessManager({ logger, sandbox, stopGraceMs: 200, killGraceMs: 200 });
  closers.push(() => processes.close());
  return new McpConnectionFactory({
    logger,
    processes,
    env: environment(pluginDataRoot),
    remote: new FixedRemote('http://127.0.0.1:1/unused'),
    limits: DEFAULT_LIMITS,
    callTimeoutMs: 10_000,
  });
}

function text(result: CallToolResult): string {
  return result.content
    .map((c) => (c.type === 'text' ? c.text : ''))
    .join('\n')
    .trim();
}

/** The checks both modes share: the first call after connect already sees the root; nothing else is reachable. */
async function exerciseDataFolder(conn: PluginConnection, dataDirSeen: string): Promise<void> {
  const allowed = await conn.callTool('list_allowed_directories', {});
  expect(allowed.isError ?? false).toBe(false);
  expect(text(allowed)).toContain(dataDirSeen);

  const file = path.posix.join(dataDirSeen, 'notes', 'hello.txt');
  await conn.callTool('create_directory', { path: path.posix.join(dataDirSeen, 'notes') });
  const written = await conn.callTool('write_file', { path: file, content: 'hello from hay' });
  expect(written.isError ?? false).toBe(false);
  const read = await conn.callTool('read_text_file', { path: file });
  expect(read.isError ?? false).toBe(false);
  expect(text(read)).toBe('hello from hay');

  const outside = await conn.callTool('read_text_file', { path: '/etc/passwd' });
  expect(outside.isError).toBe(true);
  expect(text(outside)).toMatch(/access denied/i);
  const escape = await conn.callTool('read_text_file', { path: path.posix.join(dataDirSeen, '..', 'x') });
  expect(escape.isError).toBe(true);
}

describe('filesystem plugin (server-filesystem via MCP roots)', () => {
  it('unsandboxed: the root is the host data folder, created before spawn', async () => {
    const pluginDataRoot = path.join(root, 'plugin-data-plain');
    const hostDataDir = path.join(pluginDataRoot, 'org-1', 'filesystem');
    expect(existsSync(hostDataDir)).toBe(false);
    const factory = factoryWith(new NoSandbox(), pluginDataRoot);
    const conn = await factory.connect('org-1', pluginSpec(), { timeoutMs: 20_000 });
    closers.push(() => conn.close());
    expect(existsSync(hostDataDir)).toBe(true);
    await exerciseDataFolder(conn, realpathSync(hostDataDir));
    expect(readFileSync(path.join(hostDataDir, 'notes', 'hello.txt'), 'utf8')).toBe('hello from hay');
    await conn.close();
  });

  it.skipIf(noBwrap)(
    'sandboxed (bubblewrap): the root is /data, backed by the host data folder',
    async () => {
      const dataDir = path.join(root, '.hay');
      const pluginDataRoot = path.join(dataDir, 'plugin-data');
      const sandbox = await createSandbox({
        logger,
        mode: 'auto',
        dataDir,
        pluginDataRoot,
        cgroupV2Parent: '/sys/fs/cgroup/hay-test',
        cgroupV1Name: 'hay-test',
      });
      const factory = factoryWith(sandbox, pluginDataRoot);
      const conn = await factory.connect('org-2', pluginSpec(), { timeoutMs: 20_000 });
      closers.push(() => conn.close());
      await exerciseDataFolder(conn, SANDBOX_DATA_DIR);
      const hostFile = path.join(pluginDataRoot, 'org-2', 'filesystem', 'notes', 'hello.txt');
      expect(readFileSync(hostFile, 'utf8')).toBe('hello from hay');
      await conn.close();
    },
    60_000,
  );
});
