import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, lstat, mkdir, readFile, readlink, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CgroupLayout, DetectedLayers, IdentityMode, Probe, RootEntry } from './layers.js';

export interface DetectOptions {
  /** v2 only: delegated parent cgroup under which per-spawn cgroups are created. */
  cgroupV2Parent: string;
  /** v1 only: name of the sub-cgroup created under this process's own cgroup for each controller. */
  cgroupV1Name: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

const SEARCH_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];
const ROOT_CANDIDATES = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const CGROUP_V1_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;

async function which(name: string): Promise<string | undefined> {
  for (const dir of SEARCH_DIRS) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next directory
    }
  }
  return undefined;
}

function run(file: string, args: string[], options: DetectOptions): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: options.timeoutMs, signal: options.signal, env: {}, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        resolve({ ok: !err, output: `${stdout}${stderr}`.trim() || (err ? err.message : '') });
      },
    );
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function probeBubblewrap(options: DetectOptions): Promise<Probe<{ path: string }>> {
  const bwrap = await which('bwrap');
  if (!bwrap) return { ok: false, reason: 'bwrap binary not found (install the bubblewrap package)' };
  const res = await run(bwrap, ['--ro-bind', '/', '/', 'true'], options);
  if (!res.ok) return { ok: false, reason: `bwrap does not work here: ${res.output}` };
  return { ok: true, value: { path: bwrap } };
}

async function probeIdentity(
  bwrap: string | undefined,
  options: DetectOptions,
): Promise<Probe<IdentityMode>> {
  if (!bwrap) return { ok: false, reason: 'needs bubblewrap' };
  const isRoot = process.getuid?.() === 0;
  const setpriv = isRoot ? await which('setpriv') : undefined;
  if (setpriv) {
    const res = await run(
      bwrap,
      [
        ...['--ro-bind', '/', '/', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net'],
        ...['--', setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', '--', 'true'],
      ],
      options,
    );
    if (res.ok) return { ok: true, value: { kind: 'setpriv', setprivPath: setpriv } };
  }
  const res = await run(
    bwrap,
    ['--unshare-all', '--uid', '65534', '--gid', '65534', '--ro-bind', '/', '/', 'true'],
    options,
  );
  if (!res.ok) {
    return { ok: false, reason: `user namespaces unavailable (and no root + setpriv): ${res.output}` };
  }
  return { ok: true, value: { kind: 'userns' } };
}

/** Checks that a per-spawn cgroup can be created under `base` (mkdir + rmdir a probe child). */
async function probeWritable(base: string): Promise<string | undefined> {
  const probe = path.join(base, `probe-${process.pid}-${Date.now()}`);
  try {
    await mkdir(probe, { recursive: true });
    await rmdir(probe);
    return undefined;
  } catch (err) {
    return `${base} is not writable: ${errorText(err)}`;
  }
}

async function probeCgroupV2(parent: string): Promise<Probe<CgroupLayout>> {
  const available = (await readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8')).split(/\s+/);
  const missing = ['memory', 'pids', 'cpu'].filter((c) => !available.includes(c));
  if (missing.length > 0) return { ok: false, reason: `cgroup v2 lacks controllers: ${missing.join(', ')}` };
  try {
    await mkdir(parent, { recursive: true });
    // Controllers must be enabled in every ancestor's subtree_control down to `parent` itself.
    const chain: string[] = [];
    for (let dir = parent; dir.startsWith('/sys/fs/cgroup'); dir = path.dirname(dir)) {
      chain.unshift(dir);
      if (dir === '/sys/fs/cgroup') break;
    }
    for (const dir of chain) await writeFile(path.join(dir, 'cgroup.subtree_control'), '+memory +pids +cpu');
  } catch (err) {
    return { ok: false, reason: `cannot delegate controllers to ${parent}: ${errorText(err)}` };
  }
  const notWritable = await probeWritable(parent);
  if (notWritable) return { ok: false, reason: notWritable };
  return { ok: true, value: { version: 2, parent } };
}

async function probeCgroupV1(name: string): Promise<Probe<CgroupLayout>> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const own = await readFile('/proc/self/cgroup', 'utf8');
  const bases: Partial<Record<(typeof CGROUP_V1_CONTROLLERS)[number], string>> = {};
  const problems: string[] = [];
  for (const ctrl of CGROUP_V1_CONTROLLERS) {
    const mount = mountinfo
      .split('\n')
      .map((line) => line.split(' '))
      .find((f) => {
        const sep = f.indexOf('-');
        return sep > 0 && f[sep + 1] === 'cgroup' && (f[sep + 3] ?? '').split(',').includes(ctrl);
      });
    const mountPoint = mount?.[4];
    const ownLine = own
      .split('\n')
      .map((line) => line.split(':'))
      .find((f) => (f[1] ?? '').split(',').includes(ctrl));
    if (!mountPoint || !ownLine) {
      problems.push(`${ctrl} controller not mounted`);
      continue;
    }
    const base = path.join(mountPoint, ownLine.slice(2).join(':'), name);
    const notWritable = await probeWritable(base);
    if (notWritable) problems.push(notWritable);
    else bases[ctrl] = base;
  }
  if (!bases.memory || !bases.pids || !bases.cpu)
    return { ok: false, reason: `cgroup v1: ${problems.join('; ')}` };
  return { ok: true, value: { version: 1, memory: bases.memory, pids: bases.pids, cpu: bases.cpu } };
}

async function probeCgroup(options: DetectOptions): Promise<Probe<CgroupLayout>> {
  try {
    await access('/sys/fs/cgroup/cgroup.controllers');
    return await probeCgroupV2(options.cgroupV2Parent);
  } catch {
    // not a unified (v2) mount: try v1 controllers
  }
  try {
    return await probeCgroupV1(options.cgroupV1Name);
  } catch (err) {
    return { ok: false, reason: `no usable cgroup hierarchy: ${errorText(err)}` };
  }
}

async function probeRootEntries(): Promise<RootEntry[]> {
  const out: RootEntry[] = [];
  for (const p of ROOT_CANDIDATES) {
    try {
      const st = await lstat(p);
      if (st.isSymbolicLink()) out.push({ path: p, kind: 'symlink', target: await readlink(p) });
      else if (st.isDirectory()) out.push({ path: p, kind: 'dir' });
    } catch {
      // absent on this host
    }
  }
  return out;
}

/** Probes every layer by actually exercising it (running bwrap, creating a cgroup). Never throws. */
export async function detectSandboxLayers(options: DetectOptions): Promise<DetectedLayers> {
  const bubblewrap = await probeBubblewrap(options);
  const identity = await probeIdentity(bubblewrap.ok ? bubblewrap.value.path : undefined, options);
  const cgroup = await probeCgroup(options);
  const prlimitPath = await which('prlimit');
  return {
    bubblewrap,
    identity,
    cgroup,
    prlimit: prlimitPath
      ? { ok: true, value: { path: prlimitPath } }
      : { ok: false, reason: 'prlimit binary not found (util-linux)' },
    tools: {
      sh: (await which('sh')) ?? '/bin/sh',
      rm: (await which('rm')) ?? '/bin/rm',
      env: (await which('env')) ?? '/usr/bin/env',
    },
    rootEntries: await probeRootEntries(),
  };
}
