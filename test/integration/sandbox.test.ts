import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHayError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import type { LaunchSpec, PreparedLaunch } from '../../src/runtime/ports.js';
import { createSandbox, LayeredSandbox } from '../../src/runtime/sandbox/index.js';
import { detectSandboxLayers } from '../../src/runtime/sandbox/detect.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const probeSource = path.join(here, '..', 'fixtures', 'sandbox', 'probe.mjs');
const HOST_MARKER = 'HAY_SANDBOX_TEST_HOST_MARKER';

const detected = await detectSandboxLayers({
  cgroupV2Parent: '/sys/fs/cgroup/hay-test',
  cgroupV1Name: 'hay-test',
  timeoutMs: 5000,
});
const noBwrap = !detected.bubblewrap.ok || !detected.identity.ok;
const noCgroup = noBwrap || !detected.cgroup.ok;
if (noBwrap) {
  console.warn(
    `SKIPPING sandbox integration tests: ${detected.bubblewrap.ok ? '' : detected.bubblewrap.reason} ${detected.identity.ok ? '' : detected.identity.reason}`,
  );
} else if (noCgroup && !detected.cgroup.ok) {
  console.warn(`SKIPPING sandbox cgroup tests: ${detected.cgroup.reason}`);
}

interface RunResult {
  out: Record<string, unknown>;
  code: number | null;
  limit: string | undefined;
  cgroupDirs: string[];
}

describe.skipIf(noBwrap)('sandbox (bubblewrap, real processes)', () => {
  let root: string;
  let dataDir: string;
  let pluginDataRoot: string;
  let pluginDir: string;
  let otherPluginDir: string;
  let sandbox: LayeredSandbox;
  const logger = createLogger({ level: 'silent' });

  beforeAll(async () => {
    process.env[HOST_MARKER] = 'must-not-leak';
    root = mkdtempSync(path.join(os.tmpdir(), 'hay-sandbox-'));
    chmodSync(root, 0o755);
    dataDir = path.join(root, '.hay');
    pluginDataRoot = path.join(dataDir, 'plugin-data');
    mkdirSync(dataDir, { mode: 0o700 });
    // World-readable on purpose: only the mount namespace may hide it.
    writeFileSync(path.join(dataDir, 'admin-token'), 'secret-admin-token', { mode: 0o644 });
    pluginDir = path.join(root, 'plugins', 'probe');
    otherPluginDir = path.join(root, 'plugins', 'other');
    mkdirSync(pluginDir, { recursive: true, mode: 0o755 });
    mkdirSync(otherPluginDir, { recursive: true, mode: 0o755 });
    chmodSync(path.join(root, 'plugins'), 0o755);
    copyFileSync(probeSource, path.join(pluginDir, 'probe.mjs'));
    writeFileSync(path.join(pluginDir, 'own.txt'), 'own-content', { mode: 0o644 });
    writeFileSync(path.join(otherPluginDir, 'secret.txt'), 'other-plugin-secret', { mode: 0o644 });
    sandbox = await createSandbox({
      logger,
      mode: 'auto',
      dataDir,
      pluginDataRoot,
      cgroupV2Parent: '/sys/fs/cgroup/hay-test',
      cgroupV1Name: 'hay-test',
    });
  });

  afterAll(async () => {
    delete process.env[HOST_MARKER];
    await waitFor(() => descendantPids().length === 0, 'no descendant processes');
    expect(descendantPids()).toEqual([]);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function spec(args: string[], overrides: Partial<LaunchSpec> = {}): LaunchSpec {
    return {
      orgId: 'org-1',
      pluginId: 'probe',
      argv: [process.execPath, path.join(pluginDir, 'probe.mjs'), ...args],
      cwd: pluginDir,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', PLUGIN_VALUE: 'v1', LD_TEST_VALUE: 'late' },
      limits: { memoryMb: 256, cpuPercent: 100, maxProcesses: 64, maxOpenFiles: 256 },
      network: { all: false, hosts: [] },
      readPaths: [],
      ...overrides,
    };
  }

  function cgroupDirsOf(prepared: PreparedLaunch): string[] {
    return prepared.argv.filter((a) => a.endsWith('/cgroup.procs')).map((a) => path.dirname(a));
  }

  async function run(launch: LaunchSpec, onReady?: (pid: number) => void): Promise<RunResult> {
    const prepared = await sandbox.prepare(launch);
    const [cmd, ...args] = prepared.argv;
    if (cmd === undefined) throw new Error('empty argv');
    const child = spawn(cmd, args, { cwd: prepared.cwd, env: prepared.env, detached: true, stdio: 'pipe' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    if (child.pid === undefined) throw new Error('spawn failed');
    await prepared.attach?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (onReady && stdout.includes('"ready":true') && child.pid !== undefined) onReady(child.pid);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await exited;
    const limit = await prepared.killedByLimit?.();
    const cgroupDirs = cgroupDirsOf(prepared);
    await prepared.release();
    await prepared.release();
    for (const dir of cgroupDirs) expect(existsSync(dir), `${dir} removed by release()`).toBe(false);
    const line = stdout.trim().split('\n').pop() ?? '';
    let out: Record<string, unknown> = {};
    try {
      out = JSON.parse(line) as Record<string, unknown>;
    } catch {
      out = { unparsed: stdout, stderr };
    }
    return { out, code, limit, cgroupDirs };
  }

  it('describes its layers', () => {
    const { active, unavailable } = sandbox.describe();
    expect(active).toContain('bubblewrap');
    expect(active.some((a) => a.startsWith('non-root-uid'))).toBe(true);
    expect(unavailable.map((u) => u.layer)).toContain('network-host-allowlist');
  });

  it('hides the host data dir and other plugins', async () => {
    const token = await run(spec(['read', path.join(dataDir, 'admin-token')]));
    expect(token.out).toEqual({ ok: false, code: 'ENOENT' });
    const other = await run(spec(['read', path.join(otherPluginDir, 'secret.txt')]));
    expect(other.out).toEqual({ ok: false, code: 'ENOENT' });
    const own = await run(spec(['read', path.join(pluginDir, 'own.txt')]));
    expect(own.out).toEqual({ ok: true, value: 'own-content' });
  });

  it('allows writes only to /data and /tmp', async () => {
    const ownFolder = await run(spec(['write', path.join(pluginDir, 'own.txt')]));
    expect(ownFolder.out.ok).toBe(false);
    for (const target of ['/etc/evil', '/usr/evil', '/evil', path.join(root, 'evil')]) {
      const res = await run(spec(['write', target]));
      expect(res.out.ok, target).toBe(false);
    }
    expect(existsSync(path.join(root, 'evil'))).toBe(false);
    expect((await run(spec(['write', '/tmp/scratch']))).out).toEqual({ ok: true });
    expect((await run(spec(['write', '/data/kept.txt']))).out).toEqual({ ok: true });
    expect(readFileSync(path.join(pluginDataRoot, 'org-1', 'probe', 'kept.txt'), 'utf8')).toBe('x');
  });

  it('gives exactly the launch environment and a non-root uid', async () => {
    const res = await run(spec(['identity']));
    expect(res.out.env).toEqual({
      PATH: '/usr/local/bin:/usr/bin:/bin',
      PLUGIN_VALUE: 'v1',
      LD_TEST_VALUE: 'late',
      HOME: '/data',
      HAY_PLUGIN_DATA_DIR: '/data',
    });
    expect(JSON.stringify(res.out)).not.toContain(HOST_MARKER);
    expect(res.out.uid).toBe(65534);
    expect(res.out.gid).toBe(65534);
    expect(res.out.cwd).toBe(pluginDir);
  });

  it('cuts the network unless network.all is declared', async () => {
    const server = net.createServer((s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const denied = await run(spec(['connect', String(port)]));
      expect(denied.out.connected).toBe(false);
      const allowed = await run(spec(['connect', String(port)], { network: { all: true, hosts: [] } }));
      expect(allowed.out.connected).toBe(true);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('applies the open-file limit', async () => {
    const res = await run(
      spec(['limits'], { limits: { memoryMb: 256, cpuPercent: 100, maxProcesses: 64, maxOpenFiles: 77 } }),
    );
    expect(res.out.nofile).toEqual([77, 77]);
  });

  it('refuses manifest read paths that overlap the host data dir', async () => {
    await expect(sandbox.prepare(spec(['identity'], { readPaths: [root] }))).rejects.toSatisfy(
      (err: unknown) => isHayError(err) && err.code === 'PERMISSION_DENIED',
    );
  });

  it('user-namespace identity mode (used when not root) isolates the same way', async () => {
    const userns = new LayeredSandbox(
      { logger, mode: 'auto', dataDir, pluginDataRoot },
      { ...detected, identity: { ok: true, value: { kind: 'userns' } } },
    );
    const previous = sandbox;
    sandbox = userns;
    try {
      const who = await run(spec(['identity']));
      expect(who.out.uid).toBe(65534);
      expect(JSON.stringify(who.out)).not.toContain(HOST_MARKER);
      expect((await run(spec(['read', path.join(dataDir, 'admin-token')]))).out).toEqual({
        ok: false,
        code: 'ENOENT',
      });
      expect((await run(spec(['write', '/data/userns.txt']))).out).toEqual({ ok: true });
      expect((await run(spec(['write', path.join(pluginDir, 'own.txt')]))).out.ok).toBe(false);
    } finally {
      sandbox = previous;
    }
  });

  describe.skipIf(noCgroup)('cgroup limits', () => {
    it('kills a memory hog and reports memory', async () => {
      const res = await run(
        spec(['memory'], { limits: { memoryMb: 64, cpuPercent: 100, maxProcesses: 64, maxOpenFiles: 256 } }),
      );
      expect(res.out.survived).toBeUndefined();
      expect(res.code).not.toBe(0);
      expect(res.limit).toBe('memory');
      expect(res.cgroupDirs.length).toBeGreaterThan(0);
    });

    it('bounds process creation and reports pids', async () => {
      const res = await run(
        spec(['processes', '40'], {
          limits: { memoryMb: 256, cpuPercent: 100, maxProcesses: 16, maxOpenFiles: 256 },
        }),
      );
      expect(res.out.wanted).toBe(40);
      expect(res.out.started).toBeLessThan(16);
      expect(res.limit).toBe('pids');
    });

    it('ends the whole sandbox when the process group is killed', async () => {
      let prepared: PreparedLaunch | undefined;
      const launch = spec(['wait']);
      prepared = await sandbox.prepare(launch);
      const [cmd, ...args] = prepared.argv;
      if (cmd === undefined) throw new Error('empty argv');
      const child = spawn(cmd, args, { cwd: prepared.cwd, env: prepared.env, detached: true, stdio: 'pipe' });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      const pid = child.pid;
      if (pid === undefined) throw new Error('spawn failed');
      await prepared.attach?.(pid);
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      await waitFor(() => stdout.includes('"ready":true'), 'sandboxed process ready');
      const procs = path.join(cgroupDirsOf(prepared)[0] ?? '', 'cgroup.procs');
      expect(readFileSync(procs, 'utf8').trim().split('\n').length).toBeGreaterThanOrEqual(2);
      process.kill(-pid, 'SIGTERM');
      await exited;
      await waitFor(
        () => readFileSync(procs, 'utf8').trim() === '',
        'cgroup emptied by pid-namespace teardown',
      );
      await prepared.release();
      prepared = undefined;
    });
  });
});
