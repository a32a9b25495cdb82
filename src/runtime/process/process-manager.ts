import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { InstanceError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { LaunchSpec, PreparedLaunch, SandboxWrapper } from '../ports.js';
import { LineSplitter } from './line-splitter.js';
import { ManagedProcess, type ProcessInfo } from './managed-process.js';
import { StderrBudget } from './stderr-budget.js';
import { Reaper } from './reaper.js';
import { StderrTail } from './stderr-tail.js';

export interface ProcessManagerOptions {
  logger: Logger;
  sandbox: SandboxWrapper;
  stopGraceMs: number;
  killGraceMs: number;
  /** Longest stderr line logged as one entry; longer lines are split. Default 4096. */
  maxStderrLineLength?: number;
  /** Stderr lines logged (at debug) per process and minute; the rest are dropped and counted. Default 600. */
  stderrLinesPerMinute?: number;
  /** Stderr lines kept per process for the log view (ManagedProcess.logLines). Default 200. */
  logLines?: number;
  /** Called with the number of stderr lines dropped (a metric counter). */
  onStderrDropped?: (e: { orgId: string; pluginId: string; lines: number }) => void;
  /**
   * Run each plugin under `setpriv --pdeathsig KILL` when util-linux setpriv is installed, so the direct
   * child dies with the host even before the reaper acts. Default true.
   */
  parentDeathSignal?: boolean;
}

const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/local/bin/setpriv'];

function findSetpriv(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  for (const candidate of SETPRIV_PATHS) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue;
    }
  }
  return undefined;
}

/**
 * Starts plugin processes without a shell, each in its own process group with exactly the environment of
 * its launch spec, and guarantees they do not outlive the host: `close()` stops them all, and a reaper
 * process SIGKILLs every registered group if the host dies without closing (even by SIGKILL).
 * Limitation: a plugin that moves itself to another session/group (setsid) escapes group signals; only a
 * cgroup sandbox can contain that.
 */
export class ProcessManager {
  private readonly processes = new Set<ManagedProcess>();
  private readonly reaper: Reaper;
  private readonly setpriv: string | undefined;
  private readonly maxLine: number;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: ProcessManagerOptions) {
    this.reaper = new Reaper(opts.logger.child({ component: 'reaper' }));
    this.setpriv = opts.parentDeathSignal === false ? undefined : findSetpriv();
    this.maxLine = opts.maxStderrLineLength ?? 4096;
  }

  /** Starts the reaper. Idempotent; `spawn` calls it too. */
  async start(): Promise<void> {
    if (this.closing)
      throw new InstanceError(
        'SHUTTING_DOWN',
        'The plugin host is shutting down; no new plugin processes start',
      );
    await this.reaper.start();
  }

  /**
   * Prepares the launch through the sandbox and spawns it. Resolves once the process is running and
   * registered with the reaper; rejects with InstanceError('INSTANCE_FAILED') if it cannot be started
   * (the sandbox is released in that case).
   */
  async spawn(launch: LaunchSpec): Promise<ManagedProcess> {
    await this.start();
    const prepared = await this.opts.sandbox.prepare(launch);
    const [command, ...args] = prepared.argv;
    if (command === undefined) {
      await prepared.release();
      throw new InstanceError('INSTANCE_FAILED', `Plugin ${launch.pluginId} has an empty start command`);
    }
    const argv = this.setpriv
      ? [this.setpriv, '--pdeathsig', 'KILL', '--', command, ...args]
      : [command, ...args];
    let child: ChildProcess;
    try {
      child = await this.spawnChild(argv, prepared);
    } catch (err) {
      await prepared.release();
      const reason = err instanceof Error ? err.message : String(err);
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Could not start plugin ${launch.pluginId} with "${path.basename(command)}": ${reason.split(prepared.cwd).join('.')}`,
      );
    }
    const pid = child.pid;
    if (pid === undefined) {
      await prepared.release();
      throw new InstanceError('INSTANCE_FAILED', `Could not start plugin ${launch.pluginId}: no process id`);
    }
    this.reaper.add(pid);
    const logger = this.opts.logger.child({ orgId: launch.orgId, pluginId: launch.pluginId, pid });
    const stderrTail = new StderrTail({ pluginDir: launch.cwd, env: launch.env });
    const logTail = new StderrTail({
      pluginDir: launch.cwd,
      env: launch.env,
      maxLines: this.opts.logLines ?? 200,
    });
    const proc = new ManagedProcess({
      stderrTail,
      logTail,
      child: child as ChildProcess & { pid: number },
      orgId: launch.orgId,
      pluginId: launch.pluginId,
      prepared,
      logger,
      stopGraceMs: this.opts.stopGraceMs,
      killGraceMs: this.opts.killGraceMs,
      onGone: (p) => {
        this.processes.delete(p);
        this.reaper.del(p.pid);
      },
    });
    this.processes.add(proc);
    this.logStderr(child, logger, launch, [stderrTail, logTail]);
    try {
      await prepared.attach?.(pid);
    } catch (err) {
      await proc.stop();
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Could not place plugin ${launch.pluginId} in its sandbox: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    logger.info({ argv: prepared.argv }, 'plugin process started');
    if (this.closing) {
      await proc.stop();
      throw new InstanceError(
        'SHUTTING_DOWN',
        'The plugin host is shutting down; no new plugin processes start',
      );
    }
    return proc;
  }

  /** Processes not yet fully stopped (a copy). */
  list(): ProcessInfo[] {
    const now = Date.now();
    return [...this.processes].map((p) => p.info(now));
  }

  /** Pid of the reaper process while it runs (diagnostics and tests). */
  reaperPid(): number | undefined {
    return this.reaper.pid;
  }

  /** Stops every process (escalating, in parallel), then the reaper. Idempotent; later `spawn`s reject. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.processes].map((p) => p.stop()));
      await this.reaper.close(this.opts.killGraceMs);
    })();
    return this.closing;
  }

  private spawnChild(argv: string[], prepared: PreparedLaunch): Promise<ChildProcess> {
    const [command, ...args] = argv as [string, ...string[]];
    const child = spawn(command, args, {
      cwd: prepared.cwd,
      env: prepared.env,
      detached: true,
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => {
        child.off('error', reject);
        child.on('error', (err) =>
          this.opts.logger.warn({ err: err.message, pid: child.pid }, 'plugin process error'),
        );
        resolve(child);
      });
    });
  }

  /** Plugin stderr at debug level (it is tenant-controlled text), within a per-process line budget. */
  private logStderr(child: ChildProcess, logger: Logger, launch: LaunchSpec, tails: StderrTail[]): void {
    const budget = new StderrBudget({
      linesPerMinute: this.opts.stderrLinesPerMinute ?? 600,
      report: (lines) => {
        logger.warn(
          { stream: 'stderr', dropped: lines },
          `dropped ${lines} plugin stderr lines (rate limit)`,
        );
        this.opts.onStderrDropped?.({ orgId: launch.orgId, pluginId: launch.pluginId, lines });
      },
    });
    const splitter = new LineSplitter(this.maxLine, (line) => {
      for (const tail of tails) tail.push(line);
      if (budget.take()) logger.debug({ stream: 'stderr' }, line);
    });
    child.stderr?.on('data', (chunk: Buffer) => splitter.push(chunk));
    child.stderr?.on('end', () => {
      splitter.flush();
      budget.flush();
    });
    child.stderr?.on('error', () => {});
  }
}
