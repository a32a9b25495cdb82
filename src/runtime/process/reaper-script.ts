/**
 * Source of the reaper, run as `node -e REAPER_SOURCE` (plain JavaScript so it works from src and dist).
 *
 * Protocol on its stdin, one command per line: `add <pgid>` registers a plugin process group,
 * `del <pgid>` forgets it. When stdin reaches EOF or errors (the host exited or was SIGKILLed, or the host
 * closed it on purpose) or the reaper gets SIGTERM, it SIGKILLs every registered group and exits 0.
 * SIGINT and SIGHUP are ignored so a terminal's Ctrl-C or hang-up cannot make it skip the cleanup.
 */
export const REAPER_SOURCE = `
'use strict';
const groups = new Set();
let pending = '';
let done = false;
function reap() {
  if (done) return;
  done = true;
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch {}
  }
  process.exit(0);
}
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
process.on('SIGTERM', reap);
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  pending += chunk;
  let nl;
  while ((nl = pending.indexOf('\\n')) !== -1) {
    const [cmd, arg] = pending.slice(0, nl).split(' ');
    pending = pending.slice(nl + 1);
    const pgid = Number(arg);
    if (!Number.isSafeInteger(pgid) || pgid <= 1) continue;
    if (cmd === 'add') groups.add(pgid);
    else if (cmd === 'del') groups.delete(pgid);
  }
});
process.stdin.on('end', reap);
process.stdin.on('close', reap);
process.stdin.on('error', reap);
`;
