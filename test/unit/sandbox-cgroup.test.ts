import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SpawnCgroup } from '../../src/runtime/sandbox/cgroup.js';

// A plain directory stands in for the cgroup filesystem: these tests check which files get which values.
const root = mkdtempSync(path.join(os.tmpdir(), 'hay-cgroup-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const limits = { memoryMb: 64, cpuPercent: 50, maxProcesses: 16, maxOpenFiles: 100 };
const read = (...p: string[]) => readFileSync(path.join(...p), 'utf8');

describe('SpawnCgroup v2', () => {
  const parent = path.join(root, 'v2');

  it('writes memory, swap, pids and cpu limits into one directory', async () => {
    mkdirSync(path.join(parent, 'a'), { recursive: true });
    writeFileSync(path.join(parent, 'a', 'memory.swap.max'), 'max');
    const cg = new SpawnCgroup({ version: 2, parent }, 'a', 100);
    await cg.create(limits);
    expect(cg.procsFiles).toEqual([path.join(parent, 'a', 'cgroup.procs')]);
    expect(read(parent, 'a', 'memory.max')).toBe(String(64 * 1024 * 1024));
    expect(read(parent, 'a', 'memory.swap.max')).toBe('0');
    expect(read(parent, 'a', 'pids.max')).toBe('16');
    expect(read(parent, 'a', 'cpu.max')).toBe('50000 100000');
  });

  it('reports memory from memory.events and pids from pids.events', async () => {
    const cg = new SpawnCgroup({ version: 2, parent }, 'b', 100);
    await cg.create({ ...limits, memoryMb: 0, cpuPercent: 0, maxProcesses: 0 });
    expect(await cg.killedByLimit()).toBeUndefined();
    writeFileSync(path.join(parent, 'b', 'pids.events'), 'max 3\n');
    expect(await cg.killedByLimit()).toBe('pids');
    writeFileSync(path.join(parent, 'b', 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n');
    expect(await cg.killedByLimit()).toBe('memory');
  });
});

describe('SpawnCgroup v1', () => {
  const layout = {
    version: 1,
    memory: path.join(root, 'v1', 'memory'),
    pids: path.join(root, 'v1', 'pids'),
    cpu: path.join(root, 'v1', 'cpu'),
  } as const;

  it('writes each controller in its own hierarchy', async () => {
    mkdirSync(path.join(layout.memory, 'a'), { recursive: true });
    writeFileSync(path.join(layout.memory, 'a', 'memory.memsw.limit_in_bytes'), '-1');
    const cg = new SpawnCgroup(layout, 'a', 100);
    await cg.create(limits);
    expect(cg.procsFiles).toHaveLength(3);
    expect(read(layout.memory, 'a', 'memory.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
    expect(read(layout.memory, 'a', 'memory.memsw.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
    expect(read(layout.pids, 'a', 'pids.max')).toBe('16');
    expect(read(layout.cpu, 'a', 'cpu.cfs_quota_us')).toBe('50000');
    expect(read(layout.cpu, 'a', 'cpu.cfs_period_us')).toBe('100000');
  });

  it('reports memory from memory.oom_control', async () => {
    const cg = new SpawnCgroup(layout, 'b', 100);
    await cg.create(limits);
    writeFileSync(
      path.join(layout.memory, 'b', 'memory.oom_control'),
      'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    );
    expect(await cg.killedByLimit()).toBeUndefined();
    writeFileSync(
      path.join(layout.memory, 'b', 'memory.oom_control'),
      'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    );
    expect(await cg.killedByLimit()).toBe('memory');
  });
});
