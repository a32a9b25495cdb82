import { statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { PreconditionError } from '../errors.js';
import { redactHostPaths } from '../invocation/sanitize.js';
import type { Logger } from '../logger.js';
import { computePluginChecksum } from '../manifest/checksum.js';
import { parseCommandLine } from '../manifest/command.js';
import type { ResourceLimits } from '../manifest/types.js';
import type { LaunchSpec, PluginPreparer, PluginSpec, PreparedLaunch } from '../runtime/ports.js';
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
  /** Host variables passed to CORE plugins' install/build commands (npm needs a few); nothing else. */
  env: Record<string, string>;
  /**
   * Where tenant (custom/uploaded) install and build steps run: only ever inside this sandbox, as the plugin
   * uid, with the plugin folder writable, HOME a per-plugin scratch folder and `tenantEnv` as environment.
   */
  sandbox: TenantSandbox;
  /** Complete environment of tenant install/build steps (no host variable beyond an allow-list). */
  tenantEnv: Record<string, string>;
  /** Resource limits of tenant install/build steps. */
  tenantLimits: Required<ResourceLimits>;
  /** Host name of the npm registry tenant installs fetch from (the egress allow-list of the step). */
  registryHost: string;
  /** Host paths replaced by `<host>` in every stored or returned install/build error. */
  hostPaths: readonly string[];
  /**
   * The egress layer (src/egress): a tenant step's network then goes through the egress proxy allowing
   * only `registryHost`. Unset: the step shares the sandbox's default network for a declared host.
   */
  egress?: {
    local(
      orgId: string,
      spec: PluginSpec,
    ): Promise<{ network: LaunchSpec['network']; egress?: LaunchSpec['egress']; close(): Promise<void> }>;
  };
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

/** The part of the sandbox the installer needs (LayeredSandbox). */
export interface TenantSandbox {
  /** Throws SANDBOX_UNAVAILABLE when tenant code may not run on this host. */
  assertTenantAllowed(pluginId: string): void;
  prepare(spec: LaunchSpec): Promise<PreparedLaunch>;
}

interface Steps {
  install: readonly string[] | undefined;
  build: readonly string[] | undefined;
}

/**
 * Installs and builds plugins before their first start (`npm install` / `npm run build`, or the
 * manifest's commands), without a shell and with timeouts. Custom (tenant) plugins' steps run only inside
 * the tenant sandbox, and are refused (SANDBOX_UNAVAILABLE, never stored as a failure) where it is
 * missing; core plugins' steps run on the host with an allow-listed environment. Errors name the command
 * and how it ended, with host paths in its output replaced. Concurrent requests for one plugin version
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
  /**
   * pluginKey -> its run in progress or last run (one each): the source checksum, the folder's inode (an
   * upload or rollback renames another folder into place) and, once done, the folder checksum it left.
   */
  private readonly stepRuns = new Map<string, { checksum: string; ino: number; after: string | undefined }>();

  constructor(options: InstallerOptions) {
    this.opts = options;
  }

  async ensureReady(spec: PluginSpec): Promise<void> {
    const plugin = this.opts.registry.getByKey(spec.pluginKey);
    if (!plugin) throw new PreconditionError('PLUGIN_NOT_READY', `plugin ${spec.pluginId} is not registered`);
    if (plugin.sourceType === 'custom' && (await this.runsTenantCode(plugin)))
      this.opts.sandbox.assertTenantAllowed(plugin.pluginId);
    if (plugin.installed && plugin.built) return;
    const runKey = `${plugin.key}:${plugin.checksum}`;
    const failedAt = this.failedAt.get(runKey);
    if (failedAt !== undefined && Date.now() - failedAt < this.opts.retryFailedAfterMs)
      this.throwStored(plugin);
    return this.share(runKey, () => this.prepare(plugin));
  }

  checksumLeftBySteps(key: string, checksum: string): string | undefined {
    const run = this.stepRuns.get(key);
    return run?.checksum === checksum && this.sameFolder(key, run.ino) ? run.after : undefined;
  }

  /**
   * True when folder checksum `found` of plugin `key` at source `checksum` is the host's own doing: a run
   * of its install/build steps is in progress, or `found` is what the last run left.
   */
  writtenBySteps(key: string, checksum: string, found: string): boolean {
    const run = this.stepRuns.get(key);
    if (run?.checksum !== checksum || !this.sameFolder(key, run.ino)) return false;
    return run.after === undefined ? this.running.has(`${key}:${checksum}`) : run.after === found;
  }

  /** Whether plugin `key`'s folder is still the directory with inode `ino`. */
  private sameFolder(key: string, ino: number): boolean {
    const dir = this.opts.registry.getByKey(key)?.dir;
    if (dir === undefined) return false;
    try {
      return statSync(dir).ino === ino;
    } catch {
      return false;
    }
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
    try {
      if (plugin.sourceType === 'custom') this.opts.sandbox.assertTenantAllowed(plugin.pluginId);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
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
    this.stepRuns.delete(plugin.key);
    const ran = (!plugin.installed && steps.install) || (!plugin.built && steps.build);
    const ino = ran
      ? await stat(plugin.dir).then(
          (st) => st.ino,
          () => undefined,
        )
      : undefined;
    const run: { checksum: string; ino: number; after: string | undefined } | undefined =
      ino === undefined ? undefined : { checksum: plugin.checksum, ino, after: undefined };
    if (run) this.stepRuns.set(plugin.key, run);
    try {
      await this.runSteps(plugin, steps);
    } catch (err) {
      if (this.stepRuns.get(plugin.key) === run) this.stepRuns.delete(plugin.key);
      throw err;
    }
    if (!run) return;
    // what the steps left, so staging and scans tell their writes (taken) from a change (waited for)
    const after = await computePluginChecksum(plugin.dir).catch(() => undefined);
    if (this.stepRuns.get(plugin.key) !== run) return;
    if (after === undefined || after === plugin.checksum) this.stepRuns.delete(plugin.key);
    else run.after = after;
  }

  private async runSteps(plugin: RegisteredPlugin, steps: Steps): Promise<void> {
    const { registry } = this.opts;
    if (!plugin.installed) {
      if (steps.install) {
        const result = await this.run(plugin, 'install', steps.install, this.opts.installTimeoutMs);
        if (!result.ok) {
          const error = this.describeFailure(plugin, steps.install, result);
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
          const error = this.describeFailure(plugin, steps.build, result);
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
    const tenant = plugin.sourceType === 'custom';
    logger.info({ argv, sandboxed: tenant }, `plugin ${phase} started`);
    const tail = new StderrTail({ pluginDir: plugin.dir, env: this.opts.env, maxLines: 1 });
    this.current.set(plugin.key, { phase, startedAt: Date.now(), tail });
    const common = {
      timeoutMs,
      killGraceMs: this.opts.killGraceMs,
      logger,
      onLine: (line: string) => {
        tail.push(line);
        this.opts.onProgress?.({ pluginId: plugin.pluginId, phase, line });
      },
    };
    let result: CommandResult;
    try {
      if (tenant) {
        const orgId = plugin.organizationId ?? 'core';
        const spec = this.opts.registry.toSpec(plugin);
        // the step's network: the registry only, through the egress proxy when there is one
        const egress =
          spec && this.opts.egress
            ? await this.opts.egress.local(orgId, {
                ...spec,
                manifest: {
                  ...spec.manifest,
                  permissions: { network: { hosts: [this.opts.registryHost] } },
                  configSchema: {},
                },
              })
            : undefined;
        let prepared: PreparedLaunch;
        try {
          prepared = await this.opts.sandbox.prepare({
            orgId,
            pluginId: plugin.pluginId,
            argv,
            cwd: plugin.dir,
            env: this.opts.tenantEnv,
            limits: this.opts.tenantLimits,
            network: egress?.network ?? { all: false, hosts: [this.opts.registryHost] },
            ...(egress?.egress ? { egress: egress.egress } : {}),
            readPaths: [],
            trust: 'tenant',
            purpose: 'install',
          });
        } catch (err) {
          await egress?.close();
          throw err;
        }
        try {
          result = await runCommand({
            ...common,
            argv: prepared.argv,
            cwd: prepared.cwd,
            env: prepared.env,
            onSpawn: (pid) => prepared.attach?.(pid),
          });
          const limit = await prepared.killedByLimit?.();
          if (limit !== undefined && !result.ok) result = { ...result, limit };
        } finally {
          await prepared.release();
          await egress?.close();
        }
      } else {
        result = await runCommand({ ...common, argv, cwd: plugin.dir, env: this.opts.env });
      }
    } finally {
      this.current.delete(plugin.key);
    }
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

  /** A local plugin always runs tenant code; a remote one only when it still has install/build steps. */
  private async runsTenantCode(plugin: RegisteredPlugin): Promise<boolean> {
    if (plugin.manifest?.capabilities?.mcp?.connection?.type !== 'remote') return true;
    if (plugin.installed && plugin.built) return false;
    const steps = await this.steps(plugin);
    return steps.install !== undefined || steps.build !== undefined;
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
          ? DEFAULT_INSTALL
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

  /** The command, how it ended and the tail of its output, with host paths replaced. */
  private describeFailure(plugin: RegisteredPlugin, argv: readonly string[], r: CommandResult): string {
    const how = r.timedOut
      ? `timed out after ${r.durationMs} ms`
      : r.limit
        ? `killed by the sandbox ${r.limit} limit`
        : r.signal
          ? `killed by ${r.signal}`
          : `exited with code ${r.exitCode ?? 'unknown'}`;
    const paths = { pluginDir: plugin.dir, hostPaths: this.opts.hostPaths };
    // redact before cutting, then start at a line boundary: a cut never leaves half a host path behind
    let tail = redactHostPaths(r.tail, paths);
    if (tail.length > 1500) tail = tail.slice(tail.indexOf('\n', tail.length - 1500) + 1);
    return redactHostPaths(`\`${argv.join(' ')}\` ${how}${tail ? `; output: ${tail}` : ''}`, paths);
  }
}

/**
 * The default install step never writes into the plugin's own (checksummed) files: `npm install --no-save`
 * reads a shipped package-lock.json without rewriting it and creates none.
 */
const DEFAULT_INSTALL = ['npm', 'install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error'];
