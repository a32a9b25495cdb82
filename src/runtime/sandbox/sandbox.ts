import { randomBytes } from 'node:crypto';
import { chown, mkdir, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HayError, ValidationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { LaunchSpec, PreparedLaunch, SandboxWrapper } from '../ports.js';
import { expandDataDir, withDataDir } from '../plugin-env.js';
import { SpawnCgroup } from './cgroup.js';
import { detectSandboxLayers } from './detect.js';
import {
  LAYER_BUBBLEWRAP,
  LAYER_CGROUP,
  LAYER_IDENTITY,
  LAYER_NETWORK_ALLOWLIST,
  LAYER_RLIMIT,
  type DetectedLayers,
} from './layers.js';
import {
  SANDBOX_DATA_DIR,
  WRAPPER_SCRIPT,
  buildBwrapInvocation,
  pathSegment,
  pathsOverlap,
} from './launch-args.js';

export type SandboxMode = 'auto' | 'strict' | 'off';

export interface SandboxOptions {
  logger: Logger;
  mode: SandboxMode;
  /** Host data directory (admin token, keys, database). Never visible to plugins. */
  dataDir: string;
  /** Per-(org, plugin) writable folders live at `<pluginDataRoot>/<org>/<plugin>`; bound at /data. */
  pluginDataRoot: string;
  /** Host paths bound read-only at the same path (project node_modules, ...). The node binary's dir is added. */
  extraReadOnlyPaths?: readonly string[];
  /** Paths a manifest's filesystem.read may not equal, contain or lie inside. `dataDir` is always included. */
  protectedPaths?: readonly string[];
  /** Identity of plugin processes. Default 65534 (nobody/nogroup). */
  uid?: number;
  gid?: number;
  /** Where short-lived launch argument files are written (mode 0700). Default `<dataDir>/run/sandbox`. */
  runDir?: string;
  /** v2: delegated parent cgroup. Default /sys/fs/cgroup/hay. */
  cgroupV2Parent?: string;
  /** v1: sub-cgroup name created under this process's cgroup for each controller. Default `hay`. */
  cgroupV1Name?: string;
  /** How long release() waits for a cgroup to empty. Default 5000. */
  releaseTimeoutMs?: number;
  /** Per probe command at detection. Default 5000. */
  probeTimeoutMs?: number;
  signal?: AbortSignal;
}

const REQUIRED_LAYERS = [LAYER_BUBBLEWRAP, LAYER_IDENTITY, LAYER_CGROUP, LAYER_RLIMIT] as const;

/**
 * Wraps plugin launches in the layers the host supports: bubblewrap (namespaces, minimal read-only filesystem,
 * private /data, no network unless declared), a non-root uid, a per-spawn cgroup (memory, pids, cpu) and
 * RLIMIT_NOFILE. 'auto' uses what exists, 'strict' refuses to prepare unless every layer is present, 'off' passes
 * launches through unchanged. The caller must spawn the prepared argv with exactly the prepared env, detached
 * (own session and process group: bubblewrap keeps that group, so killing it reaches the plugin), and call
 * attach(pid) right after spawn and release() after exit.
 */
export class LayeredSandbox implements SandboxWrapper {
  readonly #options: SandboxOptions;
  readonly #layers: DetectedLayers;
  readonly #uid: number;
  readonly #gid: number;
  readonly #runDir: string;
  readonly #readOnlyPaths: string[];

  constructor(options: SandboxOptions, layers: DetectedLayers) {
    this.#options = options;
    this.#layers = layers;
    this.#uid = options.uid ?? 65534;
    this.#gid = options.gid ?? 65534;
    this.#runDir = options.runDir ?? path.join(options.dataDir, 'run', 'sandbox');
    this.#readOnlyPaths = [path.dirname(process.execPath), ...(options.extraReadOnlyPaths ?? [])];
  }

  #missing(): { layer: string; reason: string }[] {
    const l = this.#layers;
    const out: { layer: string; reason: string }[] = [];
    if (!l.bubblewrap.ok) out.push({ layer: LAYER_BUBBLEWRAP, reason: l.bubblewrap.reason });
    if (!l.identity.ok) out.push({ layer: LAYER_IDENTITY, reason: l.identity.reason });
    if (!l.cgroup.ok) out.push({ layer: LAYER_CGROUP, reason: l.cgroup.reason });
    if (!l.prlimit.ok) out.push({ layer: LAYER_RLIMIT, reason: l.prlimit.reason });
    return out;
  }

  describe(): { active: string[]; unavailable: { layer: string; reason: string }[] } {
    if (this.#options.mode === 'off') {
      return {
        active: [],
        unavailable: [...REQUIRED_LAYERS, LAYER_NETWORK_ALLOWLIST].map((layer) => ({
          layer,
          reason: 'sandbox=off',
        })),
      };
    }
    const l = this.#layers;
    const active: string[] = [];
    if (l.bubblewrap.ok && l.identity.ok) {
      active.push(LAYER_BUBBLEWRAP);
      const how = l.identity.value.kind === 'setpriv' ? 'host uid via setpriv' : 'user namespace';
      active.push(`${LAYER_IDENTITY} (${this.#uid}:${this.#gid}, ${how})`);
    }
    if (l.cgroup.ok) active.push(`${LAYER_CGROUP} v${l.cgroup.value.version}`);
    if (l.prlimit.ok) active.push(LAYER_RLIMIT);
    const allowListReason =
      this.#options.mode === 'strict'
        ? 'not enforceable: plugins declaring network.hosts (without network.all) are refused'
        : 'not enforced: plugins declaring network.hosts get full network access';
    return {
      active,
      unavailable: [...this.#missing(), { layer: LAYER_NETWORK_ALLOWLIST, reason: allowListReason }],
    };
  }

  async prepare(spec: LaunchSpec): Promise<PreparedLaunch> {
    if (this.#options.mode === 'off') return passthrough(spec);
    const log = this.#options.logger.child({ orgId: spec.orgId, pluginId: spec.pluginId });
    validateSpec(spec);
    const missing = this.#missing();
    const wantsAllowList = !spec.network.all && spec.network.hosts.length > 0;
    if (this.#options.mode === 'strict') {
      if (missing.length > 0) {
        throw new HayError(
          'SANDBOX_UNAVAILABLE',
          `Sandbox is strict but these layers are unavailable: ${missing.map((m) => `${m.layer} (${m.reason})`).join('; ')}`,
          { details: { missing: missing.map((m) => m.layer) } },
        );
      }
      if (wantsAllowList) {
        throw new HayError(
          'SANDBOX_UNAVAILABLE',
          `Plugin ${spec.pluginId} declares network.hosts, which the sandbox cannot enforce; declare network.all or run with sandbox=auto`,
          { details: { missing: [LAYER_NETWORK_ALLOWLIST] } },
        );
      }
    } else if (wantsAllowList) {
      log.warn(
        { hosts: spec.network.hosts },
        'network host allow-list is not enforced; granting full network',
      );
    }

    const l = this.#layers;
    const id = `hay-${randomBytes(6).toString('hex')}`;
    const hostDataDir = path.join(
      this.#options.pluginDataRoot,
      pathSegment(spec.orgId),
      pathSegment(spec.pluginId),
    );
    const useBwrap = l.bubblewrap.ok && l.identity.ok;
    await mkdir(hostDataDir, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) {
      // The folder must belong to the host identity the plugin runs as (top level only; contents keep owners).
      const setpriv = useBwrap && l.identity.ok && l.identity.value.kind === 'setpriv';
      await chown(hostDataDir, setpriv ? this.#uid : 0, setpriv ? this.#gid : 0);
    }

    const cgroup = l.cgroup.ok
      ? new SpawnCgroup(l.cgroup.value, id, this.#options.releaseTimeoutMs ?? 5000)
      : undefined;
    const argsFile = path.join(this.#runDir, `${id}.args`);
    let released: Promise<void> | undefined;
    const release = (): Promise<void> => {
      released ??= (async () => {
        await rm(argsFile, { force: true });
        await cgroup?.release();
      })();
      return released;
    };

    try {
      if (cgroup) await cgroup.create(spec.limits);
      const rlimit =
        l.prlimit.ok && spec.limits.maxOpenFiles > 0
          ? [l.prlimit.value.path, `--nofile=${spec.limits.maxOpenFiles}:${spec.limits.maxOpenFiles}`, '--']
          : [];

      let argv: string[];
      let env: Record<string, string>;
      if (useBwrap && l.bubblewrap.ok && l.identity.ok) {
        const pluginReadPaths = await this.#checkReadPaths(spec);
        const inv = buildBwrapInvocation({
          spec,
          identity: l.identity.value,
          uid: this.#uid,
          gid: this.#gid,
          rootEntries: l.rootEntries,
          readOnlyPaths: this.#readOnlyPaths,
          pluginReadPaths,
          hostDataDir,
          shareNetwork: spec.network.all || spec.network.hosts.length > 0,
          envPath: l.tools.env,
        });
        await mkdir(this.#runDir, { recursive: true, mode: 0o700 });
        await writeFile(argsFile, inv.argsFile, { mode: 0o600 });
        const procs = cgroup?.procsFiles ?? [];
        argv = [
          ...[
            l.tools.sh,
            '-c',
            WRAPPER_SCRIPT,
            'hay-sandbox',
            argsFile,
            l.tools.rm,
            String(procs.length),
            ...procs,
          ],
          ...rlimit,
          ...[l.bubblewrap.value.path, '--args', '3', ...inv.options, '--', ...inv.command],
        ];
        // The wrapper chain runs privileged: it gets no environment; bubblewrap sets the plugin's.
        env = {};
      } else if (cgroup) {
        // Without bubblewrap the environment passes through sh, which drops names that are not identifiers.
        const procs = cgroup.procsFiles;
        argv = [
          l.tools.sh,
          '-c',
          WRAPPER_SCRIPT,
          'hay-sandbox',
          '',
          l.tools.rm,
          String(procs.length),
          ...procs,
        ];
        argv.push(...rlimit, ...spec.argv);
        env = withDataDir(spec.env, hostDataDir);
      } else {
        argv = [...rlimit, ...spec.argv];
        env = withDataDir(spec.env, hostDataDir);
      }
      log.debug({ sandboxId: id, layers: this.describe().active }, 'sandboxed launch prepared');
      const pluginDataDir = useBwrap ? SANDBOX_DATA_DIR : hostDataDir;
      const prepared: PreparedLaunch = { argv, cwd: spec.cwd, env, pluginDataDir, release };
      if (cgroup) {
        prepared.attach = async (pid: number) => {
          try {
            await cgroup.attach(pid);
          } catch (err) {
            // ESRCH: the process already exited; nothing left to confine.
            if (!(typeof err === 'object' && err !== null && 'code' in err && err.code === 'ESRCH'))
              throw err;
          }
        };
        prepared.killedByLimit = () => cgroup.killedByLimit();
      }
      return prepared;
    } catch (err) {
      await release().catch(() => undefined);
      if (err instanceof HayError) throw err;
      log.error({ err }, 'sandbox preparation failed');
      throw new HayError('SANDBOX_UNAVAILABLE', `Could not prepare the sandbox for plugin ${spec.pluginId}`, {
        cause: err,
      });
    }
  }

  /** Resolves manifest read paths (symlinks included) and refuses any that touch a protected path. */
  async #checkReadPaths(spec: LaunchSpec): Promise<string[]> {
    const protectedPaths = [this.#options.dataDir, ...(this.#options.protectedPaths ?? [])];
    const out: string[] = [];
    for (const requested of spec.readPaths) {
      if (!path.isAbsolute(requested)) {
        throw new HayError(
          'PERMISSION_DENIED',
          `Plugin ${spec.pluginId}: filesystem.read path must be absolute: ${requested}`,
        );
      }
      const resolved = await realpath(requested).catch(() => path.resolve(requested));
      const resolvedProtected = await Promise.all(
        protectedPaths.map((p) => realpath(p).catch(() => path.resolve(p))),
      );
      if (resolvedProtected.some((p) => pathsOverlap(resolved, p))) {
        throw new HayError(
          'PERMISSION_DENIED',
          `Plugin ${spec.pluginId} may not read ${requested}: it overlaps a protected host directory`,
        );
      }
      out.push(resolved);
    }
    return out;
  }
}

function validateSpec(spec: LaunchSpec): void {
  if (spec.argv.length === 0 || spec.argv[0] === undefined || spec.argv[0] === '') {
    throw new ValidationError('CONFIGURATION_INVALID', `Plugin ${spec.pluginId} has an empty start command`);
  }
  if (spec.argv[0].includes('=')) {
    throw new ValidationError(
      'CONFIGURATION_INVALID',
      `Plugin ${spec.pluginId}: the command name may not contain "="`,
    );
  }
  for (const [name, value] of Object.entries(spec.env)) {
    if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) {
      throw new ValidationError(
        'CONFIGURATION_INVALID',
        `Plugin ${spec.pluginId}: environment variable ${JSON.stringify(name)} has an invalid name or value`,
      );
    }
  }
  if (!path.isAbsolute(spec.cwd)) {
    throw new ValidationError(
      'CONFIGURATION_INVALID',
      `Plugin ${spec.pluginId}: working directory must be absolute`,
    );
  }
}

function passthrough(spec: LaunchSpec): PreparedLaunch {
  return {
    argv: [...spec.argv],
    cwd: spec.cwd,
    env: expandDataDir(spec.env),
    release: () => Promise.resolve(),
  };
}

/** Detects the available layers (see detectSandboxLayers) and builds the sandbox. 'off' skips detection. */
export async function createSandbox(options: SandboxOptions): Promise<LayeredSandbox> {
  const skipped = { ok: false as const, reason: 'sandbox=off' };
  const layers: DetectedLayers =
    options.mode === 'off'
      ? {
          bubblewrap: skipped,
          identity: skipped,
          cgroup: skipped,
          prlimit: skipped,
          tools: { sh: '/bin/sh', rm: '/bin/rm', env: '/usr/bin/env' },
          rootEntries: [],
        }
      : await detectSandboxLayers({
          cgroupV2Parent: options.cgroupV2Parent ?? '/sys/fs/cgroup/hay',
          cgroupV1Name: options.cgroupV1Name ?? 'hay',
          timeoutMs: options.probeTimeoutMs ?? 5000,
          ...(options.signal ? { signal: options.signal } : {}),
        });
  const sandbox = new LayeredSandbox(options, layers);
  const { active, unavailable } = sandbox.describe();
  options.logger.info({ mode: options.mode, active, unavailable }, 'plugin sandbox layers');
  return sandbox;
}
