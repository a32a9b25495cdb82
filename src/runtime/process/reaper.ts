import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Logger } from '../../logger.js';
import { REAPER_SOURCE } from './reaper-script.js';

/**
 * Host-side handle of the reaper process: a tiny detached node process that SIGKILLs every registered
 * plugin process group as soon as its stdin pipe from the host closes, which happens even when the host
 * is killed with SIGKILL. `add`/`del` are fire-and-forget writes; the registry is re-sent if the reaper is
 * restarted after dying. The reaper never keeps the host's event loop alive.
 */
export class Reaper {
  private child: ChildProcess | undefined;
  private readonly groups = new Set<number>();
  private closed = false;

  constructor(private readonly logger: Logger) {}

  /** Starts the reaper if it is not running (again after it died). Resolves once it is spawned. */
  async start(): Promise<void> {
    if (this.closed || this.child) return;
    const child = spawn(process.execPath, ['-e', REAPER_SOURCE], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
      env: {},
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    (child.stdin as Socket | null)?.unref();
    child.stdin?.on('error', () => {});
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (!this.closed)
        this.logger.error({ code, signal }, 'process reaper exited unexpectedly; restarting on next spawn');
    });
    for (const pgid of this.groups) this.write(`add ${pgid}`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  add(pgid: number): void {
    this.groups.add(pgid);
    this.write(`add ${pgid}`);
  }

  del(pgid: number): void {
    this.groups.delete(pgid);
    this.write(`del ${pgid}`);
  }

  /**
   * Closes the pipe (the reaper then kills any group still registered) and waits up to `graceMs` for it
   * to exit, then SIGKILLs it. Idempotent.
   */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    timer.unref();
    await exited;
    clearTimeout(timer);
  }

  private write(line: string): void {
    const stdin = this.child?.stdin;
    if (stdin && !stdin.destroyed && stdin.writable) stdin.write(`${line}\n`);
  }
}
