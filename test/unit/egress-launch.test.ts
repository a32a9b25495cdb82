import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import {
  PluginEgress,
  SANDBOX_PLATFORM_SOCKET,
  SANDBOX_PROXY_SOCKET,
} from '../../src/egress/plugin-egress.js';
import { EgressPolicy, type Resolver } from '../../src/egress/policy.js';
import { EgressProxy } from '../../src/egress/proxy.js';
import { ConfigError, EgressError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import type { HayPluginManifest } from '../../src/manifest/types.js';
import type { PluginSpec } from '../../src/runtime/ports.js';
import { buildBwrapInvocation } from '../../src/runtime/sandbox/launch-args.js';

let dir: string;
let proxy: EgressProxy;
let egress: PluginEgress;
const resolve: Resolver = (host) =>
  Promise.resolve(host === 'rebind.example' ? [{ address: '127.0.0.1', family: 4 }] : []);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hay-egress-unit-'));
  const policy = new EgressPolicy({ allow: [], resolve });
  proxy = new EgressProxy({
    policy,
    logger: createLogger({ level: 'silent' }),
    runDir: dir,
    maxConnectionsPerInstance: 4,
    idleTimeoutMs: 1_000,
    connectTimeoutMs: 1_000,
    platformTarget: () => ({ host: '127.0.0.1', port: 1 }),
  });
  egress = new PluginEgress({
    policy,
    proxy,
    maxResponseBytes: 1024,
    connectTimeoutMs: 1_000,
    headersTimeoutMs: 1_000,
    nodePath: '/opt/node/bin/node',
  });
});

afterAll(async () => {
  await proxy.close();
  expect(proxy.openInstances).toBe(0);
  await rm(dir, { recursive: true, force: true });
});

const spec = (sourceType: 'core' | 'custom', manifest: Partial<HayPluginManifest>): PluginSpec => ({
  pluginKey: 'k',
  pluginId: 'p',
  version: '1.0.0',
  checksum: 'c',
  rootDir: '/plugins/p',
  sourceType,
  organizationId: sourceType === 'custom' ? 'org' : null,
  manifest: {
    id: 'p',
    name: 'p',
    version: '1.0.0',
    type: ['mcp-connector'],
    ...manifest,
  } as HayPluginManifest,
  maxConcurrentInstances: 1,
});

describe('which local launches go through the proxy', () => {
  it('no network and no platform API: nothing at all', async () => {
    const plan = await egress.local('org', spec('custom', {}));
    expect(plan.egress).toBeUndefined();
    expect(plan.network).toEqual({ all: false, hosts: [] });
  });

  it('a core plugin without a url field keeps the host network (operator-trusted)', async () => {
    const plan = await egress.local('org', spec('core', { permissions: { network: { all: true } } }));
    expect(plan.egress).toBeUndefined();
    expect(plan.network.all).toBe(true);
  });

  it('a core plugin with a url configuration field, and any custom plugin with network, use the proxy', async () => {
    const core = await egress.local(
      'org',
      spec('core', {
        permissions: { network: { all: true } },
        configSchema: { baseUrl: { type: 'url', env: 'BASE' } },
      } as Partial<HayPluginManifest>),
    );
    const custom = await egress.local(
      'org',
      spec('custom', { permissions: { network: { hosts: ['a.example'] } } }),
    );
    expect(core.egress).toBeDefined();
    expect(custom.egress).toBeDefined();
    expect(custom.network).toEqual({ all: false, hosts: ['a.example'] });
    expect(proxy.openInstances).toBe(2);
    await core.close();
    await custom.close();
    expect(proxy.openInstances).toBe(0);
  });

  it('the namespace plan binds both sockets, points the proxy variables and HAY_API_URL inside', async () => {
    const plan = await egress.local('org', spec('custom', { permissions: { network: { all: true } } }));
    const ns = plan.egress!.namespace({ HAY_API_URL: 'http://127.0.0.1:3000' });
    expect(ns.binds.map((b) => b.sandbox)).toEqual([SANDBOX_PROXY_SOCKET, SANDBOX_PLATFORM_SOCKET]);
    expect(ns.env).toMatchObject({
      HTTP_PROXY: 'http://127.0.0.1:3128',
      HTTPS_PROXY: 'http://127.0.0.1:3128',
      NODE_USE_ENV_PROXY: '1',
      HAY_API_URL: 'http://127.0.0.1:3000',
      NO_PROXY: '127.0.0.1:3000',
    });
    expect(ns.argvPrefix.slice(0, 2)).toEqual(['/opt/node/bin/node', '-e']);
    expect(ns.argvPrefix.slice(3)).toEqual([
      '--',
      `3128=${SANDBOX_PROXY_SOCKET}`,
      `3000=${SANDBOX_PLATFORM_SOCKET}`,
      '--',
    ]);
    const host = await plan.egress!.hostNetwork({ HAY_API_URL: 'http://127.0.0.1:3000' });
    expect(host.HTTP_PROXY).toMatch(/^http:\/\/hay:[\w-]+@127\.0\.0\.1:\d+$/);
    expect(host.NO_PROXY).toBe('127.0.0.1:3000');

    const inv = buildBwrapInvocation({
      spec: {
        orgId: 'org',
        pluginId: 'p',
        argv: ['node', 'server.mjs'],
        cwd: '/plugins/p',
        env: { HAY_API_URL: 'http://127.0.0.1:3000' },
        limits: { memoryMb: 64, cpuPercent: 100, maxProcesses: 8, maxOpenFiles: 64 },
        network: plan.network,
        readPaths: [],
      },
      identity: { kind: 'setpriv', setprivPath: '/usr/bin/setpriv' },
      uid: 65534,
      gid: 65534,
      rootEntries: [],
      readOnlyPaths: [],
      pluginReadPaths: [],
      hostDataDir: '/srv/data/o/p',
      shareNetwork: false,
      envPath: '/usr/bin/env',
      egress: ns,
    });
    expect(inv.options).toContain('--unshare-net');
    expect(inv.options.join(' ')).toContain(`--bind ${ns.binds[0]!.host} ${SANDBOX_PROXY_SOCKET}`);
    expect(inv.argsFile).toContain('HTTP_PROXY\0http://127.0.0.1:3128\0');
    expect(inv.command.slice(-2)).toEqual(['node', 'server.mjs']);
    expect(inv.command).toContain(`3128=${SANDBOX_PROXY_SOCKET}`);
    await plan.close();
  });
});

describe('which remote connections are guarded', () => {
  it("a core manifest's own URL is trusted; tenant-chosen URLs are not", () => {
    expect(egress.remote('org', spec('core', {}), { fromConfiguration: false })).toBeUndefined();
    expect(egress.remote('org', spec('core', {}), { fromConfiguration: true })).toBeDefined();
    expect(egress.remote('org', spec('custom', {}), { fromConfiguration: false })).toBeDefined();
  });

  it('WebSocket: an IP literal is checked before connecting, a name in the lookup', async () => {
    const remote = egress.remote('org', spec('custom', {}), { fromConfiguration: false })!;
    expect(() => remote.webSocket(new URL('ws://127.0.0.1:9/mcp'))).toThrow(EgressError);
    expect(() => remote.webSocket(new URL('ws://[::1]:9/mcp'))).toThrow(EgressError);
    const { lookup, maxPayloadBytes } = remote.webSocket(new URL('ws://rebind.example:9/mcp'));
    expect(maxPayloadBytes).toBe(1024);
    const err = await new Promise<unknown>((done) => lookup('rebind.example', { all: true }, (e) => done(e)));
    expect(err).toBeInstanceOf(EgressError);
    await expect(remote.preflight('file:///etc/passwd')).rejects.toThrow('file: URLs are not allowed');
  });
});

it('HAY_EGRESS_ALLOW is validated at boot, naming the variable and the entry', () => {
  expect(() => loadConfig({ HAY_EGRESS_ALLOW: '10.0.0.0/8, nope!' })).toThrow(ConfigError);
  expect(() => loadConfig({ HAY_EGRESS_ALLOW: '10.0.0.0/8, nope!' })).toThrow(
    'HAY_EGRESS_ALLOW: egress allow entry "nope!"',
  );
  expect(loadConfig({ HAY_EGRESS_ALLOW: '127.0.0.1:4010' }).egressAllow).toBe('127.0.0.1:4010');
});
