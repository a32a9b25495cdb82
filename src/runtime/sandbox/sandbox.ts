import { randomBytes } from 'node:crypto';
import { chown, lchown, lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
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
import { SANDBOX_DATA_DIR, WRAPPER_SCRIPT, buildBwrapInvocation, pathSegment } from './launch-args.js';
import { ReadPathPolicy } from './read-paths.js';

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
  /** Host paths tenant manifests' filesystem.read may lie inside (HAY_FILESYSTEM_READ_ALLOW). Default none. */
  readAllowList?: readonly string[];
  /**
   * Operator opt-out (HAY_ALLOW_UNSANDBOXED_TENANT_CODE): tenant code runs with whatever layers exist instead
   * of being refused when a tenant layer is missing. Default false.
   */
  allowUnsandboxedTenantCode?: boolean;
  /** HOME of install/build steps: `<installHomeRoot>/<org>/<plugin>`. Default `<dataDir>/install-home`. */
  installHomeRoot?: string;
  /** Layers treated as absent whatever detection found (e.g. tests pretending there is no bubblewrap). */
  hideLayers?: readonly string[];
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
/** Layers without which tenant code is refused in every mode (unless the operator opted out). */
export const TENANT_REQUIRED_LAYERS: readonly string[] = [LAYER_BUBBLEWRAP, LAYER_IDENTITY, LAYER_RLIMIT];

const INSTALL_HINTS: Record<string, string> = {
  [LAYER_BUBBLEWRAP]: 'apt-get install bubblewrap',
  [LAYER_IDENTITY]:
    'enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run as root with setpriv (util-linux)',
  [LAYER_RLIMIT]: 'apt-get install util-linux',
  [LAYER_CGROUP]: 'delegate a writable cgroup (v2: /sys/fs/cgroup/hay) to the host user',
};

/** What happens to tenant code (custom/uploaded plugins) on this host. */
export interface TenantPolicy {
  /** 'sandboxed': runs in the tenant sandbox; 'refused': a tenant layer is missing; 'unsandboxed': opt-out. */
  tenantCode: 'sandboxed' | 'refused' | 'unsandboxed';
  /** Tenant layers unavailable, with reasons. */
  missing: { layer: string; reason: string }[];
  /** HAY_ALLOW_UNSANDBOXED_TENANT_CODE is set. */
  optOut: boolean;
}

/**
 * Wraps plugin launches in the layers the host supports: bubblewrap (namespaces, minimal read-only filesystem,
 * private /data, no network unless declared), a non-root uid, a per-spawn cgroup (memory, pids, cpu) and
 * RLIMIT_NOFILE. Two trust levels: core code ('core') runs with what exists in 'auto' and unwrapped in 'off';
 * tenant code ('tenant') needs bubblewrap, the non-root uid and the rlimit in every mode and is refused
 * (SANDBOX_UNAVAILABLE naming the missing layer) without them, unless `allowUnsandboxedTenantCode`. 'strict'
 * refuses every launch unless every layer is present. The caller must spawn the prepared argv with exactly the prepared env, detached
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
  readonly #readPolicy: ReadPathPolicy;

  constructor(options: SandboxOptions, layers: DetectedLayers) {
    this.#options = options;
    this.#layers = hide(layers, options.hideLayers ?? []);
    this.#readPolicy = new ReadPathPolicy({
      allow: options.readAllowList ?? [],
      protectedPaths: [options.dataDir, ...(options.protectedPaths ?? [])],
    });
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

  tenantPolicy(): TenantPolicy {
    const optOut = this.#options.allowUnsandboxedTenantCode === true;
    const missing =
      this.#options.mode === 'off'
        ? TENANT_REQUIRED_LAYERS.map((layer) => ({ layer, reason: 'HAY_SANDBOX=off' }))
        : this.#missing().filter((m) => TENANT_REQUIRED_LAYERS.includes(m.layer));
    const tenantCode =
      missing.length === 0
        ? 'sandboxed'
        : optOut && this.#options.mode !== 'strict'
          ? 'unsandboxed'
          : 'refused';
    return { tenantCode, missing, optOut };
  }

  /**
   * Throws SANDBOX_UNAVAILABLE (naming each missing layer and how to install it) when tenant code may not run
   * here. Called before any tenant install, build or start.
   */
  assertTenantAllowed(pluginId: string): void {
    const policy = this.tenantPolicy();
    if (policy.tenantCode !== 'refused') return;
    const prefix = `Plugin ${pluginId} is an uploaded (tenant) plugin and runs only inside the sandbox`;
    const details = { details: { missing: policy.missing.map((m) => m.layer) } };
    if (this.#options.mode === 'off')
      throw new HayError(
        'SANDBOX_UNAVAILABLE',
        `${prefix}, which is switched off on this host (HAY_SANDBOX=off). The operator must set HAY_SANDBOX=auto`,
        details,
      );
    const what = policy.missing
      .map((m) => `${m.layer} (${m.reason}; ${INSTALL_HINTS[m.layer] ?? 'see the README'})`)
      .join('; ');
    throw new HayError(
      'SANDBOX_UNAVAILABLE',
      `${prefix}, and this host lacks ${policy.missing.length > 1 ? 'these layers' : 'this layer'}: ${what}`,
      details,
    );
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
    const trust = spec.trust ?? 'tenant';
    const install = spec.purpose === 'install';
    if (trust === 'tenant') this.assertTenantAllowed(spec.pluginId);
    const pluginReadPaths = await this.#readPolicy.check(spec.pluginId, spec.readPaths, trust);
    if (this.#options.mode === 'off')
      return passthrough(spec, spec.egress ? await spec.egress.hostNetwork(spec.env) : {});
    const log = this.#options.logger.child({ orgId: spec.orgId, pluginId: spec.pluginId });
    validateSpec(spec);
    const missing = this.#missing();
    // An install step's network (the npm registry) is the egress layer's to restrict, not a manifest's;
    // with spec.egress the allow-list is enforced by the egress proxy.
    const wantsAllowList = !install && !spec.egress && !spec.network.all && spec.network.hosts.length > 0;
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
      install
        ? (this.#options.installHomeRoot ?? path.join(this.#options.dataDir, 'install-home'))
        : this.#options.pluginDataRoot,
      pathSegment(spec.orgId),
      pathSegment(spec.pluginId),
    );
    const useBwrap = l.bubblewrap.ok && l.identity.ok;
    await mkdir(hostDataDir, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) {
      // The folder must belong to the host identity the plugin runs as (top level only; contents keep owners).
      const setpriv = useBwrap && l.identity.ok && l.identity.value.kind === 'setpriv';
      await chown(hostDataDir, setpriv ? this.#uid : 0, setpriv ? this.#gid : 0);
      // An install step writes into the plugin folder as the plugin uid (node_modules, build output).
      if (install && setpriv) {
        await chownTree(spec.cwd, this.#uid, this.#gid);
        await chownTree(hostDataDir, this.#uid, this.#gid);
      }
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
      const hostNetEgress = spec.egress && !useBwrap ? await spec.egress.hostNetwork(spec.env) : {};
      if (useBwrap && l.bubblewrap.ok && l.identity.ok) {
        const inv = buildBwrapInvocation({
          spec,
          identity: l.identity.value,
          uid: this.#uid,
          gid: this.#gid,
          rootEntries: l.rootEntries,
          readOnlyPaths: this.#readOnlyPaths,
          pluginReadPaths,
          hostDataDir,
          shareNetwork: !spec.egress && (spec.network.all || spec.network.hosts.length > 0),
          envPath: l.tools.env,
          ...(spec.egress ? { egress: spec.egress.namespace(spec.env) } : {}),
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
        env = {
          ...withDataDir(spec.env, hostDataDir),
          ...hostNetEgress,
          HAY_PLUGIN_DATA_DIR: hostDataDir,
          ...(install ? { HOME: hostDataDir } : {}),
        };
      } else {
        argv = [...rlimit, ...spec.argv];
        env = {
          ...withDataDir(spec.env, hostDataDir),
          ...hostNetEgress,
          HAY_PLUGIN_DATA_DIR: hostDataDir,
          ...(install ? { HOME: hostDataDir } : {}),
        };
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

/** Layers named in `hidden` become unavailable; hiding bubblewrap takes the uid layer (it needs bwrap) too. */
function hide(layers: DetectedLayers, hidden: readonly string[]): DetectedLayers {
  if (hidden.length === 0) return layers;
  const gone = (what: string) => ({
    ok: false as const,
    reason: `${what} (hidden by the hideLayers option)`,
  });
  const noBwrap = hidden.includes(LAYER_BUBBLEWRAP);
  return {
    ...layers,
    bubblewrap: noBwrap ? gone('bwrap binary not found') : layers.bubblewrap,
    identity: noBwrap || hidden.includes(LAYER_IDENTITY) ? gone('needs bubblewrap') : layers.identity,
    cgroup: hidden.includes(LAYER_CGROUP) ? gone('no usable cgroup hierarchy') : layers.cgroup,
    prlimit: hidden.includes(LAYER_RLIMIT) ? gone('prlimit binary not found') : layers.prlimit,
  };
}

/** lchown of `root` and everything below it (symlinks themselves, never their targets). */
async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(root);
  await lchown(root, uid, gid);
  if (!st.isDirectory()) return;
  for (const entry of await readdir(root)) await chownTree(path.join(root, entry), uid, gid);
}

function passthrough(spec: LaunchSpec, extraEnv: Record<string, string>): PreparedLaunch {
  return {
    argv: [...spec.argv],
    cwd: spec.cwd,
    env: { ...expandDataDir(spec.env), ...extraEnv },
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
  const tenant = sandbox.tenantPolicy();
  const missing = tenant.missing.map((m) => `${m.layer} (${m.reason})`).join('; ');
  if (tenant.tenantCode === 'unsandboxed')
    options.logger.error(
      { missing: tenant.missing },
      `HAY_ALLOW_UNSANDBOXED_TENANT_CODE is set: UPLOADED PLUGINS RUN WITHOUT THE SANDBOX (missing: ${missing}); any organization admin can run code as the host user`,
    );
  else if (tenant.tenantCode === 'refused')
    options.logger.warn(
      { missing: tenant.missing },
      `uploaded (tenant) plugins will be refused: missing ${missing}; install bubblewrap (apt-get install bubblewrap); core plugins keep working`,
    );
  return sandbox;
}
