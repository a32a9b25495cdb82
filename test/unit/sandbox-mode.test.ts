import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HayError, isHayError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import type { LaunchSpec } from '../../src/runtime/ports.js';
import { LayeredSandbox, type SandboxMode, type SandboxOptions } from '../../src/runtime/sandbox/index.js';
import type { DetectedLayers } from '../../src/runtime/sandbox/layers.js';
import { buildBwrapInvocation, pathsOverlap } from '../../src/runtime/sandbox/launch-args.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'hay-sandbox-unit-'));
const dataDir = path.join(root, '.hay');
const logger = createLogger({ level: 'silent' });

afterAll(() => rmSync(root, { recursive: true, force: true }));

const tools = { sh: '/bin/sh', rm: '/bin/rm', env: '/usr/bin/env' };
const allLayers: DetectedLayers = {
  bubblewrap: { ok: true, value: { path: '/usr/bin/bwrap' } },
  identity: { ok: true, value: { kind: 'userns' } },
  cgroup: { ok: true, value: { version: 2, parent: '/sys/fs/cgroup/hay' } },
  prlimit: { ok: true, value: { path: '/usr/bin/prlimit' } },
  tools,
  rootEntries: [{ path: '/bin', kind: 'symlink', target: 'usr/bin' }],
};
const noLayers: DetectedLayers = {
  bubblewrap: { ok: false, reason: 'bwrap binary not found' },
  identity: { ok: false, reason: 'needs bubblewrap' },
  cgroup: { ok: false, reason: 'no usable cgroup hierarchy' },
  prlimit: { ok: false, reason: 'prlimit binary not found' },
  tools,
  rootEntries: [],
};

function sandbox(
  mode: SandboxMode,
  layers: DetectedLayers,
  extra: Partial<SandboxOptions> = {},
): LayeredSandbox {
  return new LayeredSandbox(
    { logger, mode, dataDir, pluginDataRoot: path.join(dataDir, 'plugin-data'), ...extra },
    layers,
  );
}

function spec(overrides: Partial<LaunchSpec> = {}): LaunchSpec {
  return {
    orgId: 'org/../1',
    pluginId: 'p',
    argv: ['node', 'server.js'],
    cwd: path.join(root, 'plugins', 'p'),
    env: { PATH: '/usr/bin', SECRET: 's3cret', LD_PRELOAD: '/x.so' },
    limits: { memoryMb: 64, cpuPercent: 50, maxProcesses: 16, maxOpenFiles: 100 },
    network: { all: false, hosts: [] },
    readPaths: [],
    trust: 'core',
    ...overrides,
  };
}

async function rejection(p: Promise<unknown>): Promise<HayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isHayError(err)) throw new Error(`expected a HayError, got ${String(err)}`);
  return err;
}

describe('sandbox modes', () => {
  it('strict refuses to prepare and lists every missing layer', async () => {
    const partial: DetectedLayers = { ...allLayers, cgroup: noLayers.cgroup, prlimit: noLayers.prlimit };
    const err = await rejection(sandbox('strict', partial).prepare(spec()));
    expect(err.code).toBe('SANDBOX_UNAVAILABLE');
    expect(err.message).toContain('cgroups (no usable cgroup hierarchy)');
    expect(err.message).toContain('rlimit-nofile (prlimit binary not found)');
    expect(err.message).not.toContain('bubblewrap');
    expect(err.details).toEqual({ missing: ['cgroups', 'rlimit-nofile'] });
  });

  it('strict refuses a host allow-list it cannot enforce', async () => {
    const err = await rejection(
      sandbox('strict', allLayers).prepare(spec({ network: { all: false, hosts: ['api.example.com'] } })),
    );
    expect(err.code).toBe('SANDBOX_UNAVAILABLE');
    expect(err.message).toContain('network.hosts');
  });

  it('auto with no layers runs the command as is, with the data dir', async () => {
    const prepared = await sandbox('auto', noLayers).prepare(spec());
    expect(prepared.argv).toEqual(['node', 'server.js']);
    expect(prepared.env).toMatchObject({ SECRET: 's3cret' });
    expect(prepared.env.HAY_PLUGIN_DATA_DIR).toBe(path.join(dataDir, 'plugin-data', 'org%2F..%2F1', 'p'));
    expect(prepared.attach).toBeUndefined();
    await prepared.release();
  });

  it('auto with only prlimit prefixes the open-file limit', async () => {
    const prepared = await sandbox('auto', { ...noLayers, prlimit: allLayers.prlimit }).prepare(spec());
    expect(prepared.argv).toEqual(['/usr/bin/prlimit', '--nofile=100:100', '--', 'node', 'server.js']);
    await prepared.release();
  });

  it('off passes through unchanged and reports nothing active', async () => {
    const sb = sandbox('off', allLayers);
    const prepared = await sb.prepare(spec());
    expect(prepared.argv).toEqual(['node', 'server.js']);
    expect(prepared.env).toEqual(spec().env);
    expect(sb.describe().active).toEqual([]);
  });

  it('describe lists unavailable layers with reasons and never claims a host allow-list', () => {
    const { active, unavailable } = sandbox('auto', { ...allLayers, cgroup: noLayers.cgroup }).describe();
    expect(active).toEqual(['bubblewrap', 'non-root-uid (65534:65534, user namespace)', 'rlimit-nofile']);
    expect(unavailable).toEqual([
      { layer: 'cgroups', reason: 'no usable cgroup hierarchy' },
      {
        layer: 'network-host-allowlist',
        reason: expect.stringContaining('not enforced') as unknown as string,
      },
    ]);
  });

  it('with bubblewrap the wrapper gets no environment and the plugin env stays off the command line', async () => {
    const prepared = await sandbox('auto', { ...allLayers, cgroup: noLayers.cgroup }).prepare(spec());
    expect(prepared.env).toEqual({});
    expect(prepared.argv).not.toContain('s3cret');
    expect(prepared.argv).not.toContain(dataDir);
    expect(prepared.argv).toContain(path.join(dataDir, 'plugin-data', 'org%2F..%2F1', 'p'));
    await prepared.release();
  });

  it('refuses manifest read paths overlapping the data dir', async () => {
    const err = await rejection(sandbox('auto', allLayers).prepare(spec({ readPaths: ['/'] })));
    expect(err.code).toBe('PERMISSION_DENIED');
  });

  it('rejects a NUL byte in an environment value', async () => {
    const err = await rejection(sandbox('auto', noLayers).prepare(spec({ env: { A: 'x\0y' } })));
    expect(err.code).toBe('CONFIGURATION_INVALID');
  });
});

describe('tenant code (custom/uploaded plugins)', () => {
  const tenant = (o: Partial<LaunchSpec> = {}) => spec({ trust: 'tenant', ...o });

  it('is refused without bubblewrap in auto mode, naming the layer and how to install it', async () => {
    const sb = sandbox('auto', { ...noLayers, prlimit: allLayers.prlimit });
    const err = await rejection(sb.prepare(tenant()));
    expect(err.code).toBe('SANDBOX_UNAVAILABLE');
    expect(err.message).toMatch(
      /^Plugin p is an uploaded \(tenant\) plugin and runs only inside the sandbox/,
    );
    expect(err.message).toContain('bubblewrap (bwrap binary not found; apt-get install bubblewrap)');
    expect(err.details).toEqual({ missing: ['bubblewrap', 'non-root-uid'] });
    expect(err.message).not.toContain('cgroups');
    expect(sb.tenantPolicy()).toMatchObject({ tenantCode: 'refused', optOut: false });
    // core code keeps running with what the machine has
    const core = await sb.prepare(spec());
    expect(core.argv).toContain('node');
    await core.release();
  });

  it('defaults to tenant when the launch names no trust level', async () => {
    const { trust: _trust, ...untagged } = spec();
    const err = await rejection(sandbox('auto', noLayers).prepare(untagged));
    expect(err.code).toBe('SANDBOX_UNAVAILABLE');
  });

  it('is refused when the sandbox is off, telling the operator what to set', async () => {
    const err = await rejection(sandbox('off', allLayers).prepare(tenant()));
    expect(err.message).toContain('switched off on this host (HAY_SANDBOX=off)');
    expect((await sandbox('off', allLayers).prepare(spec())).argv).toEqual(['node', 'server.js']);
  });

  it('runs without cgroups (used where available), never without the tenant layers', async () => {
    const sb = sandbox('auto', { ...allLayers, cgroup: noLayers.cgroup });
    expect(sb.tenantPolicy().tenantCode).toBe('sandboxed');
    const prepared = await sb.prepare(tenant());
    expect(prepared.argv).toContain('/usr/bin/bwrap');
    await prepared.release();
    const noRlimit = await rejection(
      sandbox('auto', { ...allLayers, prlimit: noLayers.prlimit }).prepare(tenant()),
    );
    expect(noRlimit.details).toEqual({ missing: ['rlimit-nofile'] });
  });

  it('runs unsandboxed only by the operator opt-out, which strict ignores', async () => {
    const sb = sandbox('auto', noLayers, { allowUnsandboxedTenantCode: true });
    expect(sb.tenantPolicy()).toMatchObject({ tenantCode: 'unsandboxed', optOut: true });
    const prepared = await sb.prepare(tenant());
    expect(prepared.argv).toEqual(['node', 'server.js']);
    await prepared.release();
    const strict = sandbox('strict', noLayers, { allowUnsandboxedTenantCode: true });
    expect(strict.tenantPolicy().tenantCode).toBe('refused');
    expect((await rejection(strict.prepare(tenant()))).code).toBe('SANDBOX_UNAVAILABLE');
  });

  it('hideLayers makes a machine with bubblewrap look like one without', async () => {
    const sb = sandbox('auto', allLayers, { hideLayers: ['bubblewrap'] });
    expect(sb.tenantPolicy().tenantCode).toBe('refused');
    expect((await rejection(sb.prepare(tenant()))).message).toContain('apt-get install bubblewrap');
  });

  it('an install step gets its folder writable and a scratch HOME, never the runtime data folder', async () => {
    const sb = sandbox('auto', { ...allLayers, cgroup: noLayers.cgroup });
    const prepared = await sb.prepare(tenant({ purpose: 'install' }));
    const argv = prepared.argv.join(' ');
    expect(argv).toContain(`--bind ${spec().cwd} ${spec().cwd}`);
    expect(argv).toContain(`--bind ${path.join(dataDir, 'install-home', 'org%2F..%2F1', 'p')} /data`);
    expect(argv).not.toContain(path.join(dataDir, 'plugin-data'));
    await prepared.release();
  });

  it('filesystem.read: tenant paths must lie inside the operator allow-list and never overlap protected paths', async () => {
    const pluginsDir = path.join(root, 'plugins');
    const opts = { readAllowList: [root, '/usr/share'], protectedPaths: [pluginsDir] };
    const sb = sandbox('auto', { ...allLayers, cgroup: noLayers.cgroup }, opts);
    const etc = await rejection(sb.prepare(tenant({ readPaths: ['/etc'] })));
    expect(etc.code).toBe('PERMISSION_DENIED');
    expect(etc.message).toBe(
      'Plugin p may not read /etc: it is outside the paths the operator allows (HAY_FILESYSTEM_READ_ALLOW)',
    );
    const plugins = await rejection(sb.prepare(tenant({ readPaths: [pluginsDir] })));
    expect(plugins.message).toContain('overlaps a protected host directory');
    const ok = await sb.prepare(tenant({ readPaths: ['/usr/share'] }));
    expect(ok.argv.join(' ')).toContain('--ro-bind-try /usr/share /usr/share');
    await ok.release();
    const none = await rejection(sandbox('auto', allLayers).prepare(tenant({ readPaths: ['/usr/share'] })));
    expect(none.message).toContain('the operator allows no filesystem.read paths for uploaded plugins');
    // core manifests are the operator's: only protected paths apply
    const core = await sandbox('auto', { ...allLayers, cgroup: noLayers.cgroup }).prepare(
      spec({ readPaths: ['/usr/share'] }),
    );
    await core.release();
  });
});

describe('bubblewrap invocation', () => {
  const base = {
    uid: 65534,
    gid: 65534,
    rootEntries: allLayers.rootEntries,
    readOnlyPaths: ['/opt/node/bin'],
    pluginReadPaths: [],
    hostDataDir: '/srv/.hay/plugin-data/o/p',
    envPath: '/usr/bin/env',
  };

  it('unshares the network unless declared (setpriv mode)', () => {
    const identity = { kind: 'setpriv', setprivPath: '/usr/bin/setpriv' } as const;
    const closed = buildBwrapInvocation({ ...base, spec: spec(), identity, shareNetwork: false });
    expect(closed.options).toContain('--unshare-net');
    expect(closed.options).not.toContain('--new-session');
    const open = buildBwrapInvocation({ ...base, spec: spec(), identity, shareNetwork: true });
    expect(open.options).not.toContain('--unshare-net');
    expect(open.command.slice(0, 2)).toEqual(['/usr/bin/setpriv', '--reuid=65534']);
  });

  it('uses a user namespace with --share-net only when declared (userns mode)', () => {
    const identity = { kind: 'userns' } as const;
    const closed = buildBwrapInvocation({ ...base, spec: spec(), identity, shareNetwork: false });
    expect(closed.options).toContain('--unshare-all');
    expect(closed.options).not.toContain('--share-net');
    expect(closed.options.join(' ')).toContain('--uid 65534 --gid 65534');
    const open = buildBwrapInvocation({ ...base, spec: spec(), identity, shareNetwork: true });
    expect(open.options).toContain('--share-net');
  });

  it('puts the environment in the argument file and loader variables after the uid drop', () => {
    const inv = buildBwrapInvocation({
      ...base,
      spec: spec(),
      identity: { kind: 'userns' },
      shareNetwork: false,
    });
    const fileArgs = inv.argsFile.split('\0');
    expect(fileArgs.slice(0, 4)).toEqual(['--clearenv', '--setenv', 'PATH', '/usr/bin']);
    expect(fileArgs).toContain('s3cret');
    expect(fileArgs).not.toContain('LD_PRELOAD');
    expect(inv.command).toEqual(['/usr/bin/env', '-u', 'PWD', '--', 'LD_PRELOAD=/x.so', 'node', 'server.js']);
    expect(inv.options.join(' ')).toContain(`--bind ${base.hostDataDir} /data`);
    expect(inv.options.join(' ')).toContain(`--ro-bind ${spec().cwd} ${spec().cwd}`);
  });

  it('detects overlapping paths', () => {
    expect(pathsOverlap('/a/b', '/a')).toBe(true);
    expect(pathsOverlap('/a', '/a/b/c')).toBe(true);
    expect(pathsOverlap('/ab', '/a')).toBe(false);
    expect(pathsOverlap('/', '/srv/.hay')).toBe(true);
  });
});
