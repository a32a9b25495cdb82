import { readdirSync, readFileSync } from 'node:fs';

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Fields after the command name of /proc/<pid>/stat (index 0 = state), or undefined if the pid is gone. */
export function readStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Live (non-zombie) pids whose process group is `pgid`, read from /proc. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = readStatFields(Number(name));
    if (fields === undefined || fields[0] === 'Z') continue;
    if (Number(fields[2]) === pgid) out.push(Number(name));
  }
  return out;
}

/**
 * True while any non-zombie process is in group `pgid`. kill(-pgid, 0) answers ESRCH once the group is
 * empty; zombies (orphans nobody reaped yet) still count for kill(), so /proc decides in that case.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
  }
  return groupMembers(pgid).length > 0;
}

/** Sends `signal` to every process of group `pgid`; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
}
