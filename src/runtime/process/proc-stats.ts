import { readFileSync } from 'node:fs';
import { groupMembers, readStatFields } from './process-group.js';

/** Linux USER_HZ; 100 on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Resident memory and CPU time (user + system, seconds) summed over the live members of process group
 * `pgid`, from /proc/<pid>/stat and /proc/<pid>/status. Undefined when the group has no live member.
 */
export function groupUsage(pgid: number): { rssBytes: number; cpuSeconds: number } | undefined {
  let rssBytes = 0;
  let ticks = 0;
  let seen = 0;
  for (const pid of groupMembers(pgid)) {
    const fields = readStatFields(pid);
    if (fields === undefined) continue;
    // After the command name: index 11 = utime, 12 = stime (stat fields 14 and 15).
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (match?.[1] !== undefined) rssBytes += Number(match[1]) * 1024;
    } catch {
      continue;
    }
    seen++;
  }
  return seen === 0 ? undefined : { rssBytes, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
}
