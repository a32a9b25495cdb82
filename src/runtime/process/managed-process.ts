import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../../logger.js';
import type { PreparedLaunch } from '../ports.js';
import { groupAlive, signalGroup } from './process-group.js';
import type { StderrTail } from './stderr-tail.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type ProcessState = 'running' | 'stopping' | 'stopped';

export interface ProcessInfo {
  pid: number;
  orgId: string;
  pluginId: string;
  startedAt: Date;
  uptimeMs: number;
  state: ProcessState;
}

export interface ManagedProcessOptions {
  child: ChildProcess & { pid: number };
  orgId: string;
  pluginId: string;
  prepared: PreparedLaunch;
  logger: Logger;
  stopGraceMs: number;
  killGraceMs: number;
  /** Keeps the last stderr lines for error messages (fed by whoever reads stderr). */
  stderrTail?: StderrTail;
  /** Keeps the last (up to pluginLogLines) stderr lines for the organization's log view (same sanitizing). */
  logTail?: StderrTail;
  /** Called once the child exited and its group is gone, before `release` of the sandbox. */
  onGone: (proc: ManagedProcess) => void;
}

const POLL_MS = 20;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * One plugin child process, leader of its own process group (pgid = pid). When the child exits on its
 * own, the rest of its group is stopped the same way as `stop()` does, so nothing it started survives.
 */
export class ManagedProcess {
  readonly pid: number;
  readonly orgId: string;
  readonly pluginId: string;
  readonly startedAt = new Date();
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Resolves when the direct child has exited (it never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Resolves when the child's stderr has closed (every line it wrote has been read); never rejects. */
  readonly stderrClosed: Promise<void>;

  private exitInfo: ExitInfo | undefined;
  private state: ProcessState = 'running';
  private stopping: Promise<ExitInfo> | undefined;
  private readonly opts: ManagedProcessOptions;

  constructor(opts: ManagedProcessOptions) {
    this.opts = opts;
    const { child } = opts;
    this.pid = child.pid;
    this.orgId = opts.orgId;
    this.pluginId = opts.pluginId;
    if (!child.stdin || !child.stdout)
      throw new Error('plugin child must be spawned with piped stdin/stdout');
    this.stdin = child.stdin;
    this.stdout = child.stdout;
    this.stdin.on('error', (err) => opts.logger.debug({ err: err.message }, 'plugin stdin error'));
    this.stdout.on('error', (err) => opts.logger.debug({ err: err.message }, 'plugin stdout error'));
    const stderr = child.stderr;
    this.stderrClosed = stderr
      ? new Promise<void>((resolve) => {
          if (stderr.destroyed) resolve();
          stderr.once('close', () => resolve());
        })
      : Promise.resolve();
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        if (this.state === 'running') {
          opts.logger.info({ code, signal }, 'plugin process exited');
          void this.stop();
        }
        resolve(this.exitInfo);
      });
    });
  }

  info(now = Date.now()): ProcessInfo {
    return {
      pid: this.pid,
      orgId: this.orgId,
      pluginId: this.pluginId,
      startedAt: this.startedAt,
      uptimeMs: now - this.startedAt.getTime(),
      state: this.state,
    };
  }

  get currentState(): ProcessState {
    return this.state;
  }

  /** Exit of the direct child, or undefined while it runs. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** The last lines the process wrote to stderr, sanitized for the caller (see StderrTail). */
  stderrLines(): string[] {
    return this.opts.stderrTail?.lines() ?? [];
  }

  /** The log view's lines: the last stderr lines of this process, sanitized like stderrLines(). */
  logLines(): string[] {
    return this.opts.logTail?.lines() ?? [];
  }

  /** The plugin's data folder as the process sees it (its HAY_PLUGIN_DATA_DIR), if it has one. */
  get dataDir(): string | undefined {
    return this.opts.prepared.pluginDataDir ?? this.opts.prepared.env.HAY_PLUGIN_DATA_DIR;
  }

  /** Which sandbox limit killed the process ('memory', 'pids', ...), when the sandbox can tell. */
  async limitReason(): Promise<string | undefined> {
    return this.opts.prepared.killedByLimit?.();
  }

  /**
   * Ends stdin, waits stopGraceMs, SIGTERMs the process group, waits killGraceMs, then SIGKILLs the group
   * (repeated every killGraceMs while anything survives). Resolves with the child's exit once the child has
   * exited AND no process of its group is left, after the sandbox was released. Idempotent: every call
   * returns the same promise.
   */
  stop(): Promise<ExitInfo> {
    this.stopping ??= this.runStop();
    return this.stopping;
  }

  private async runStop(): Promise<ExitInfo> {
    const { logger, stopGraceMs, killGraceMs } = this.opts;
    if (this.state === 'running') this.state = 'stopping';
    if (!this.stdin.destroyed) this.stdin.end();
    if (!(await this.waitGone(stopGraceMs))) {
      logger.debug('plugin process still running after stdin close; sending SIGTERM to its group');
      signalGroup(this.pid, 'SIGTERM');
      if (!(await this.waitGone(killGraceMs))) {
        for (;;) {
          logger.warn('plugin process group still running after SIGTERM; sending SIGKILL');
          signalGroup(this.pid, 'SIGKILL');
          if (await this.waitGone(killGraceMs)) break;
        }
      }
    }
    this.state = 'stopped';
    this.opts.onGone(this);
    try {
      await this.opts.prepared.release();
    } catch (err) {
      logger.error({ err: err instanceof Error ? err.message : String(err) }, 'sandbox release failed');
    }
    return this.exitInfo ?? (await this.exited);
  }

  /** Waits up to `ms` for the child to have exited and its group to be empty; true if that happened. */
  private async waitGone(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    if (this.exitInfo === undefined) {
      const exitedInTime = await Promise.race([this.exited.then(() => true), delay(ms).then(() => false)]);
      if (!exitedInTime) return false;
    }
    for (;;) {
      if (!groupAlive(this.pid)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await delay(Math.min(POLL_MS, left));
    }
  }
}
