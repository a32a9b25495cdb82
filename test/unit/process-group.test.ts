import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { groupAlive, groupMembers, signalGroup } from '../../src/runtime/process/process-group.js';
import { groupUsage } from '../../src/runtime/process/proc-stats.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

afterAll(() => {
  expect(descendantPids()).toEqual([]);
});

describe('process group helpers', () => {
  it('see a detached group with its members, measure it, and see it gone after SIGKILL', async () => {
    const child = spawn('sh', ['-c', 'sleep 1000 & sleep 1000; wait'], { detached: true, stdio: 'ignore' });
    const pgid = child.pid ?? 0;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor(() => groupMembers(pgid).length === 3, 'shell and two sleeps in the group');
    expect(groupAlive(pgid)).toBe(true);
    expect(groupUsage(pgid)?.rssBytes).toBeGreaterThan(0);
    signalGroup(pgid, 'SIGKILL');
    await exited;
    await waitFor(() => !groupAlive(pgid), 'group gone');
    expect(groupUsage(pgid)).toBeUndefined();
    expect(() => signalGroup(pgid, 'SIGTERM')).not.toThrow();
  });
});
