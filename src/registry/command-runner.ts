import { spawn } from 'node:child_process';
import type { Logger } from '../logger.js';

export interface CommandResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Last lines of combined stdout/stderr, at most `tailBytes`. */
  tail: string;
  durationMs: number;
  /** The sandbox limit that killed the command ('memory', 'pids'), when known. */
  limit?: string;
}

/**
 * Runs argv without a shell in its own process group. Output lines go to `logger` (debug) and
 * `onLine`; on timeout or abort the whole group gets SIGTERM, then SIGKILL after `killGraceMs`.
 * Resolves (never rejects for a failing command) once the process has exited.
 */
export function runCommand(options: {
  argv: readonly string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  killGraceMs: number;
  logger: Logger;
  signal?: AbortSignal;
  tailBytes?: number;
  onLine?: (line: string) => void;
  /** Called with the pid right after spawn (e.g. to move it into a cgroup); a rejection kills the group. */
  onSpawn?: (pid: number) => Promise<void> | undefined;
}): Promise<CommandResult> {
  const [cmd, ...args] = options.argv;
  const tailBytes = options.tailBytes ?? 4000;
  const started = performance.now();
  return new Promise((resolve) => {
    let tail = '';
    let timedOut = false;
    const push = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-tailBytes);
      for (const line of text.split(/\r?\n/)) {
        if (line.trim() === '') continue;
        options.logger.debug({ line: line.slice(0, 2000) }, 'command output');
        options.onLine?.(line);
      }
    };
    if (cmd === undefined) {
      resolve({
        ok: false,
        exitCode: null,
        signal: null,
        timedOut: false,
        tail: 'empty command',
        durationMs: 0,
      });
      return;
    }
    let spawnError: string | undefined;
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', push);
    child.stderr.on('data', push);
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const terminate = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), options.killGraceMs);
      killTimer.unref();
    };
    if (child.pid !== undefined && options.onSpawn) {
      const pid = child.pid;
      void Promise.resolve()
        .then(() => options.onSpawn?.(pid))
        .catch((err: unknown) => {
          spawnError = `could not confine the command: ${err instanceof Error ? err.message : String(err)}`;
          killGroup('SIGKILL');
        });
    }
    const timer = setTimeout(() => {
      timedOut = true;
      terminate();
    }, options.timeoutMs);
    timer.unref();
    const onAbort = () => terminate();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      spawnError = err.message;
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      killGroup('SIGKILL');
      options.signal?.removeEventListener('abort', onAbort);
      if (spawnError) tail = (tail + `\n${spawnError}`).slice(-tailBytes);
      resolve({
        ok: code === 0 && !timedOut && spawnError === undefined,
        exitCode: code,
        signal: sig,
        timedOut,
        tail: tail.trim(),
        durationMs: Math.round(performance.now() - started),
      });
    });
  });
}
