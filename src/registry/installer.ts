import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PreconditionError } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseCommandLine } from '../manifest/command.js';
import type { PluginPreparer, PluginSpec } from '../runtime/ports.js';
import { StderrTail } from '../runtime/process/stderr-tail.js';
import { runCommand, type CommandResult } from './command-runner.js';
import type { PluginRegistry, RegisteredPlugin } from './plugin-registry.js';

export interface InstallerOptions {
  registry: PluginRegistry;
  logger: Logger;
  installTimeoutMs: number;
  buildTimeoutMs: number;
  killGraceMs: number;
  /** A failed install/build is not retried automatically before this long. */
  retryFailedAfterMs: number;
  /** Host variables passed to install/build commands (npm needs a few); nothing else is inherited. */
  env: Record<string, string>;
  onPhaseDone?: (event: {
    pluginId: string;
    phase: 'install' | 'build';
    ok: boolean;
    durationMs: number;
  }) => void;
  onProgress?: (event: { pluginId: string; phase: 'install' | 'build'; line: string }) => void;
  /** Runs after a successful install step, before the build (links the host's packages for peers). */
  afterInstall?: (plugin: RegisteredPlugin) => Promise<void>;
}

/** An install or build step while it runs: what `plugins.get` shows as `installing`. */
export interface InstallProgress {
  phase: 'install' | 'build';
  /** Since the step started. */
  elapsedMs: number;
  /** The last line of output, sanitized like stderr in errors (see StderrTail); null before any. */
  lastLine: string | null;
}

interface Steps {
  install: readonly string[] | undefined;
  build: readonly string[] | undefined;
}

/**
 * Installs and builds plugins before their first start (`npm install` / `npm run build`, or the
 * manifest's commands), without a shell and with timeouts. Concurrent requests for one plugin version
 * share one run. Failures are stored in the registry (`install_error`/`build_error`, with the command and
 * the tail of its output) and never leave the plugin marked installed.
 */
export class PluginInstaller implements PluginPreparer {
  private readonly opts: InstallerOptions;
  private readonly running = new Map<string, Promise<void>>();
  private readonly failedAt = new Map<string, number>();
  private readonly current = new Map<
    string,
    { phase: 'install' | 'build'; startedAt: number; tail: StderrTail }
  >();

  constructor(options: InstallerOptions) {
    this.opts = options;
  }

  async ensureReady(spec: PluginSpec): Promise<void> {
    const plugin = this.opts.registry.getByKey(spec.pluginKey);
    if (!plugin) throw new PreconditionError('PLUGIN_NOT_READY', `plugin ${spec.pluginId} is not registered`);
    if (plugin.installed && plugin.built) return;
    const runKey = `${plugin.key}:${plugin.checksum}`;
    const failedAt = this.failedAt.get(runKey);
    if (failedAt !== undefined && Date.now() - failedAt < this.opts.retryFailedAfterMs)
      this.throwStored(plugin);
    return this.share(runKey, () => this.prepare(plugin));
  }

  /** The step running for plugin `key`, if any. */
  progress(key: string): InstallProgress | undefined {
    const c = this.current.get(key);
    if (!c) return undefined;
    return { phase: c.phase, elapsedMs: Date.now() - c.startedAt, lastLine: c.tail.lines().at(-1) ?? null };
  }

  /** Runs the install step now (admin action), sharing any run in progress. */
  installPlugin(key: string): Promise<void> {
    return this.forced(key);
  }

  /** Runs the build step now (admin action), installing first when needed. */
  buildPlugin(key: string): Promise<void> {
    return this.forced(key);
  }

  private forced(key: string): Promise<void> {
    const plugin = this.opts.registry.getByKey(key);
    if (!plugin)
      return Promise.reject(new PreconditionError('PLUGIN_NOT_READY', `plugin ${key} is not registered`));
    const runKey = `${plugin.key}:${plugin.checksum}`;
    this.failedAt.delete(runKey);
    return this.share(runKey, () => this.prepare({ ...plugin, installed: false, built: false }));
  }

  private share(runKey: string, fn: () => Promise<void>): Promise<void> {
    const existing = this.running.get(runKey);
    if (existing) return existing;
    const run = fn()
      .catch((err: unknown) => {
        this.failedAt.set(runKey, Date.now());
        throw err;
      })
      .finally(() => this.running.delete(runKey));
    this.running.set(runKey, run);
    return run;
  }

  private async prepare(plugin: RegisteredPlugin): Promise<void> {
    const steps = await this.steps(plugin);
    const { registry } = this.opts;
    if (!plugin.installed) {
      if (steps.install) {
        const result = await this.run(plugin, 'install', steps.install, this.opts.installTimeoutMs);
        if (!result.ok) {
          const error = describeFailure(steps.install, result);
          await registry.setInstallState(plugin.key, plugin.checksum, {
            installed: false,
            built: false,
            installError: error,
          });
          throw new PreconditionError(
            'INSTALL_FAILED',
            `install of plugin ${plugin.pluginId} failed: ${error}`,
          );
        }
      }
      await this.opts.afterInstall?.(plugin);
      await registry.setInstallState(plugin.key, plugin.checksum, { installed: true, installError: null });
    }
    if (!plugin.built) {
      if (steps.build) {
        const result = await this.run(plugin, 'build', steps.build, this.opts.buildTimeoutMs);
        if (!result.ok) {
          const error = describeFailure(steps.build, result);
          await registry.setInstallState(plugin.key, plugin.checksum, { built: false, buildError: error });
          throw new PreconditionError('BUILD_FAILED', `build of plugin ${plugin.pluginId} failed: ${error}`);
        }
      }
      await registry.setInstallState(plugin.key, plugin.checksum, { built: true, buildError: null });
    }
  }

  private async run(
    plugin: RegisteredPlugin,
    phase: 'install' | 'build',
    argv: readonly string[],
    timeoutMs: number,
  ) {
    const logger = this.opts.logger.child({ pluginId: plugin.pluginId, orgId: plugin.organizationId, phase });
    logger.info({ argv }, `plugin ${phase} started`);
    const tail = new StderrTail({ pluginDir: plugin.dir, env: this.opts.env, maxLines: 1 });
    this.current.set(plugin.key, { phase, startedAt: Date.now(), tail });
    const result = await runCommand({
      argv,
      cwd: plugin.dir,
      env: this.opts.env,
      timeoutMs,
      killGraceMs: this.opts.killGraceMs,
      logger,
      onLine: (line) => {
        tail.push(line);
        this.opts.onProgress?.({ pluginId: plugin.pluginId, phase, line });
      },
    }).finally(() => this.current.delete(plugin.key));
    logger[result.ok ? 'info' : 'error'](
      { durationMs: result.durationMs, exitCode: result.exitCode, timedOut: result.timedOut },
      `plugin ${phase} ${result.ok ? 'finished' : 'failed'}`,
    );
    this.opts.onPhaseDone?.({
      pluginId: plugin.pluginId,
      phase,
      ok: result.ok,
      durationMs: result.durationMs,
    });
    return result;
  }

  private async steps(plugin: RegisteredPlugin): Promise<Steps> {
    const mcp = plugin.manifest?.capabilities?.mcp;
    let pkg: {
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
      scripts?: Record<string, string>;
    } = {};
    try {
      pkg = JSON.parse(await readFile(path.join(plugin.dir, 'package.json'), 'utf8')) as typeof pkg;
    } catch {
      // no package.json: nothing to install or build unless the manifest says so
    }
    const hasDeps =
      Object.keys(pkg.dependencies ?? {}).length + Object.keys(pkg.devDependencies ?? {}).length > 0;
    return {
      install: mcp?.installCommand
        ? parseCommandLine(mcp.installCommand)
        : hasDeps
          ? ['npm', 'install', '--no-audit', '--no-fund', '--loglevel=error']
          : undefined,
      build: mcp?.buildCommand
        ? parseCommandLine(mcp.buildCommand)
        : pkg.scripts?.build
          ? ['npm', 'run', 'build']
          : undefined,
    };
  }

  private throwStored(plugin: RegisteredPlugin): never {
    if (plugin.installError)
      throw new PreconditionError(
        'INSTALL_FAILED',
        `install of plugin ${plugin.pluginId} failed: ${plugin.installError}`,
      );
    throw new PreconditionError(
      'BUILD_FAILED',
      `build of plugin ${plugin.pluginId} failed: ${plugin.buildError ?? 'unknown error'}`,
    );
  }
}

function describeFailure(argv: readonly string[], r: CommandResult): string {
  const how = r.timedOut
    ? `timed out after ${r.durationMs} ms`
    : r.signal
      ? `killed by ${r.signal}`
      : `exited with code ${r.exitCode ?? 'unknown'}`;
  return `\`${argv.join(' ')}\` ${how}${r.tail ? `; output: ${r.tail.slice(-1500)}` : ''}`;
}
