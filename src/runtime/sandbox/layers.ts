/** Result of probing one sandbox layer: usable with its facts, or unavailable with a reason a person can act on. */
export type Probe<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Where per-spawn cgroups are created. v1: one base directory per controller; v2: one delegated parent. */
export type CgroupLayout =
  { version: 2; parent: string } | { version: 1; memory: string; pids: string; cpu: string };

/** How the plugin process ends up non-root. */
export type IdentityMode =
  /** Host is root: privileged bubblewrap (no user namespace) and `setpriv` drops to the plugin uid/gid inside. */
  | { kind: 'setpriv'; setprivPath: string }
  /** bubblewrap creates a user namespace and maps the plugin uid/gid onto the invoking host user. */
  | { kind: 'userns' };

/** A top-level host entry (/bin, /lib64 ...) and how it is reproduced inside the sandbox. */
export interface RootEntry {
  path: string;
  kind: 'dir' | 'symlink';
  /** Symlink target as stored (e.g. `usr/bin`). */
  target?: string;
}

/** Everything `createSandbox` learned about the host; injected directly in tests. */
export interface DetectedLayers {
  bubblewrap: Probe<{ path: string }>;
  identity: Probe<IdentityMode>;
  cgroup: Probe<CgroupLayout>;
  prlimit: Probe<{ path: string }>;
  /** Absolute paths of helper binaries used by the launch wrapper. */
  tools: { sh: string; rm: string; env: string };
  rootEntries: readonly RootEntry[];
}

export const LAYER_BUBBLEWRAP = 'bubblewrap';
export const LAYER_IDENTITY = 'non-root-uid';
export const LAYER_CGROUP = 'cgroups';
export const LAYER_RLIMIT = 'rlimit-nofile';
export const LAYER_NETWORK_ALLOWLIST = 'network-host-allowlist';
