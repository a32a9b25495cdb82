import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResourceLimits } from '../../manifest/types.js';
import type { CgroupLayout } from './layers.js';

const CPU_PERIOD_US = 100_000;

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function readCounter(file: string, key: string): Promise<number> {
  try {
    const text = await readFile(file, 'utf8');
    const line = text.split('\n').find((l) => l.startsWith(`${key} `));
    return line ? Number(line.slice(key.length + 1)) : 0;
  } catch {
    return 0;
  }
}

async function readPids(procsFile: string): Promise<number[]> {
  try {
    return (await readFile(procsFile, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch (err) {
    if (errno(err) === 'ENOENT') return [];
    throw err;
  }
}

/**
 * One cgroup (v2) or one cgroup per controller (v1) holding exactly one plugin process tree. A value of 0 or
 * less for a limit means "no limit". `create` writes the limits; `release` kills what is left and removes the
 * directories (idempotent).
 */
export class SpawnCgroup {
  readonly #dirs: { memory: string; pids: string; cpu: string };
  readonly #version: 1 | 2;
  readonly #releaseTimeoutMs: number;
  #released = false;

  constructor(layout: CgroupLayout, name: string, releaseTimeoutMs: number) {
    this.#version = layout.version;
    this.#releaseTimeoutMs = releaseTimeoutMs;
    this.#dirs =
      layout.version === 2
        ? {
            memory: path.join(layout.parent, name),
            pids: path.join(layout.parent, name),
            cpu: path.join(layout.parent, name),
          }
        : {
            memory: path.join(layout.memory, name),
            pids: path.join(layout.pids, name),
            cpu: path.join(layout.cpu, name),
          };
  }

  /** Distinct directories of this cgroup (1 for v2, 3 for v1). */
  get directories(): string[] {
    return [...new Set(Object.values(this.#dirs))];
  }

  /** The `cgroup.procs` files a process must be written to, one per directory. */
  get procsFiles(): string[] {
    return this.directories.map((d) => path.join(d, 'cgroup.procs'));
  }

  async create(limits: Required<ResourceLimits>): Promise<void> {
    for (const dir of this.directories) await mkdir(dir, { recursive: true });
    const mem = limits.memoryMb > 0 ? Math.floor(limits.memoryMb * 1024 * 1024) : undefined;
    const quota =
      limits.cpuPercent > 0
        ? Math.max(1000, Math.floor((CPU_PERIOD_US * limits.cpuPercent) / 100))
        : undefined;
    const pids = limits.maxProcesses > 0 ? Math.floor(limits.maxProcesses) : undefined;
    if (this.#version === 2) {
      const dir = this.#dirs.memory;
      if (mem !== undefined) {
        await writeFile(path.join(dir, 'memory.max'), String(mem));
        if (await exists(path.join(dir, 'memory.swap.max')))
          await writeFile(path.join(dir, 'memory.swap.max'), '0');
      }
      if (pids !== undefined) await writeFile(path.join(dir, 'pids.max'), String(pids));
      if (quota !== undefined) await writeFile(path.join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
      return;
    }
    if (mem !== undefined) {
      await writeFile(path.join(this.#dirs.memory, 'memory.limit_in_bytes'), String(mem));
      const memsw = path.join(this.#dirs.memory, 'memory.memsw.limit_in_bytes');
      if (await exists(memsw)) await writeFile(memsw, String(mem));
    }
    if (pids !== undefined) await writeFile(path.join(this.#dirs.pids, 'pids.max'), String(pids));
    if (quota !== undefined) {
      await writeFile(path.join(this.#dirs.cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      await writeFile(path.join(this.#dirs.cpu, 'cpu.cfs_quota_us'), String(quota));
    }
  }

  /** Moves `pid` into every directory of this cgroup. A no-op for a pid already there. */
  async attach(pid: number): Promise<void> {
    for (const file of this.procsFiles) await writeFile(file, String(pid));
  }

  /** 'memory' when the OOM killer fired in this cgroup, 'pids' when a fork hit pids.max, else undefined. */
  async killedByLimit(): Promise<string | undefined> {
    if (this.#version === 2) {
      if ((await readCounter(path.join(this.#dirs.memory, 'memory.events'), 'oom_kill')) > 0) return 'memory';
    } else {
      const oomControl = path.join(this.#dirs.memory, 'memory.oom_control');
      if ((await readCounter(oomControl, 'oom_kill')) > 0) return 'memory';
    }
    if ((await readCounter(path.join(this.#dirs.pids, 'pids.events'), 'max')) > 0) return 'pids';
    return undefined;
  }

  /** Live pids still in the cgroup (union over directories). */
  async pids(): Promise<number[]> {
    const all = new Set<number>();
    for (const file of this.procsFiles) for (const pid of await readPids(file)) all.add(pid);
    return [...all];
  }

  /**
   * SIGKILLs every process left in the cgroup, waits (polling, up to releaseTimeoutMs) until it is empty and
   * removes the directories. Idempotent; throws only if a directory could not be removed in time.
   */
  async release(): Promise<void> {
    if (this.#released) return;
    if (this.#version === 2 && (await exists(path.join(this.#dirs.pids, 'cgroup.kill')))) {
      await writeFile(path.join(this.#dirs.pids, 'cgroup.kill'), '1').catch(() => undefined);
    }
    const deadline = Date.now() + this.#releaseTimeoutMs;
    const pending = new Set(this.directories);
    for (;;) {
      for (const pid of await this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      for (const dir of [...pending]) {
        try {
          await rmdir(dir);
          pending.delete(dir);
        } catch (err) {
          if (errno(err) === 'ENOENT') pending.delete(dir);
          else if (errno(err) !== 'EBUSY') throw err;
        }
      }
      if (pending.size === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`cgroup ${[...pending].join(', ')} still busy after ${this.#releaseTimeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 10).unref());
    }
    this.#released = true;
  }
}
