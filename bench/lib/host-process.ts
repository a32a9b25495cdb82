// The host as `npm start` runs it (`node bin/hay-plugins.js serve`, no build step), in its own process:
// time from spawn to GET /healthz 200, and its resident memory when idle.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';

export interface HostProcessResult {
  /** Spawn until /healthz answered 200. */
  startMs: number;
  /** VmRSS of the host process once healthy and after `settleMs`. */
  rssIdleMb: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/**
 * Starts the host on a data dir (a fresh temp one unless given: `reuse` starts it twice and measures the
 * second start, the "installed checkout" case with an existing database).
 */
export async function measureHostProcess(options: {
  reuse: boolean;
  settleMs: number;
}): Promise<HostProcessResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hay-bench-proc-'));
  try {
    if (options.reuse) await runOnce(dataDir, 0);
    return await runOnce(dataDir, options.settleMs);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function runOnce(dataDir: string, settleMs: number): Promise<HostProcessResult> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'hay-plugins.js'), 'serve'], {
    cwd: packageRoot(),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HAY_PORT: String(port),
      HAY_DATA_DIR: dataDir,
      HAY_ADMIN_TOKEN: 'bench-admin-token',
      HAY_LOG_LEVEL: 'silent',
      HAY_WARMUP_MAX_INSTANCES: '0',
    },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`host exited with code ${child.exitCode} before /healthz`);
      if (Date.now() > deadline) throw new Error('host did not answer /healthz within 120 s');
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const startMs = performance.now() - t0;
    if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
    const rssIdleMb = child.pid !== undefined ? rssMb(child.pid) : 0;
    return { startMs, rssIdleMb };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}
