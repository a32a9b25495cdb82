import path from 'node:path';
import { withDataDir } from '../plugin-env.js';
import type { LaunchEgress, LaunchSpec } from '../ports.js';
import type { IdentityMode, RootEntry } from './layers.js';

/** Path of the plugin's private writable folder inside the sandbox (also HOME and HAY_PLUGIN_DATA_DIR). */
export const SANDBOX_DATA_DIR = '/data';

/** Minimal /etc files a plugin needs for DNS, TLS and user lookups. Absent ones are skipped. */
export const ETC_FILES = [
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/host.conf',
  '/etc/gai.conf',
  '/etc/nsswitch.conf',
  '/etc/services',
  '/etc/protocols',
  '/etc/passwd',
  '/etc/group',
  '/etc/localtime',
  '/etc/ssl',
  '/etc/ca-certificates',
  '/etc/pki',
];

/**
 * Static launch wrapper, run with `sh -c SCRIPT hay-sandbox ARGS_FILE RM N PROCS_FILE... COMMAND...`. It joins the
 * per-spawn cgroup by writing its own pid (before anything can fork, so no child escapes), opens the bubblewrap
 * argument file on fd 3 and deletes it, then execs COMMAND. No caller-supplied string is ever part of the code.
 */
export const WRAPPER_SCRIPT = [
  'set -u',
  'args=$1 rm=$2 n=$3',
  'shift 3',
  'if [ -n "$args" ]; then',
  '  exec 3< "$args" || exit 125',
  '  "$rm" -f -- "$args"',
  'fi',
  'while [ "$n" -gt 0 ]; do',
  '  echo "$$" > "$1" || { echo "hay-sandbox: cannot join cgroup $1" >&2; exit 125; }',
  '  shift',
  '  n=$((n - 1))',
  'done',
  'exec "$@"',
].join('\n');

/**
 * Variables the dynamic loader or libc act on (glibc's "unsecure" list, LD_*, MALLOC_*) plus PWD, which
 * bubblewrap overwrites. They must not reach the privileged part of the launch chain, so they are applied by
 * `env(1)` after the uid drop, which means their values appear on that short-lived command line.
 */
export function isLateEnvName(name: string): boolean {
  return (
    name.startsWith('LD_') ||
    name.startsWith('MALLOC_') ||
    [
      'GCONV_PATH',
      'GETCONF_DIR',
      'GLIBC_TUNABLES',
      'HOSTALIASES',
      'LOCALDOMAIN',
      'LOCPATH',
      'NIS_PATH',
      'NLSPATH',
      'RESOLV_HOST_CONF',
      'RES_OPTIONS',
      'TMPDIR',
      'TZDIR',
      'PWD',
    ].includes(name)
  );
}

export interface BwrapPlan {
  spec: LaunchSpec;
  identity: IdentityMode;
  uid: number;
  gid: number;
  rootEntries: readonly RootEntry[];
  /** Host directories bound read-only at the same path (node dir, node_modules, admin extras). */
  readOnlyPaths: readonly string[];
  /** Manifest read paths, already checked against protected paths. */
  pluginReadPaths: readonly string[];
  hostDataDir: string;
  shareNetwork: boolean;
  envPath: string;
  /** Egress proxy plumbing for a private network namespace (src/egress): socket binds, env, argv prefix. */
  egress?: ReturnType<LaunchEgress['namespace']>;
}

/**
 * The bubblewrap options (everything between `bwrap` and `--`), the NUL-separated argument file content
 * (environment, kept off the command line) and the command after `--`.
 */
export function buildBwrapInvocation(plan: BwrapPlan): {
  options: string[];
  argsFile: string;
  command: string[];
} {
  const { spec } = plan;
  const options: string[] = [];
  if (plan.identity.kind === 'setpriv') {
    options.push('--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try');
    if (!plan.shareNetwork) options.push('--unshare-net');
  } else {
    options.push('--unshare-all');
    if (plan.shareNetwork) options.push('--share-net');
    options.push('--uid', String(plan.uid), '--gid', String(plan.gid));
  }
  // --as-pid-1: no intermediate bwrap init inside the pid namespace. That init is left unreaped when the
  // outer bwrap exits, and hosts whose PID 1 reaps lazily then show a zombie after every plugin stop.
  // The plugin itself is pid 1 of its namespace: SIGTERM without a handler is ignored, so stop escalates
  // to SIGKILL (from outside the namespace), which always works.
  options.push('--as-pid-1', '--die-with-parent', '--hostname', 'hay-plugin');
  options.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp');
  options.push('--ro-bind', '/usr', '/usr');
  for (const entry of plan.rootEntries) {
    if (entry.kind === 'symlink' && entry.target !== undefined)
      options.push('--symlink', entry.target, entry.path);
    else options.push('--ro-bind-try', entry.path, entry.path);
  }
  // bubblewrap creates missing parents of a bind target with mode 0700 when privileged; create them 0755 first.
  const made = new Set<string>(['/', '/usr', '/proc', '/dev', '/tmp']);
  const bind = (flag: string, src: string, dest: string) => {
    const parents: string[] = [];
    for (let dir = path.dirname(dest); !made.has(dir); dir = path.dirname(dir)) parents.unshift(dir);
    for (const dir of parents) {
      options.push('--dir', dir);
      made.add(dir);
    }
    options.push(flag, src, dest);
    made.add(dest);
  };
  for (const file of ETC_FILES) bind('--ro-bind-try', file, file);
  const isUnderUsr = (p: string) => p === '/usr' || p.startsWith('/usr/');
  for (const p of plan.readOnlyPaths) if (!isUnderUsr(p)) bind('--ro-bind-try', p, p);
  for (const p of plan.pluginReadPaths) bind('--ro-bind-try', p, p);
  // An install/build step writes node_modules and build output into its own folder; a run never does.
  bind(spec.purpose === 'install' ? '--bind' : '--ro-bind', spec.cwd, spec.cwd);
  bind('--bind', plan.hostDataDir, SANDBOX_DATA_DIR);
  for (const b of plan.egress?.binds ?? []) bind('--bind', b.host, b.sandbox);
  options.push('--chdir', spec.cwd);

  const env: Record<string, string> = {
    ...withDataDir(spec.env, SANDBOX_DATA_DIR),
    ...plan.egress?.env,
    HOME: SANDBOX_DATA_DIR,
    HAY_PLUGIN_DATA_DIR: SANDBOX_DATA_DIR,
  };
  const fileArgs = ['--clearenv'];
  const late: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (isLateEnvName(name)) late.push(`${name}=${value}`);
    else fileArgs.push('--setenv', name, value);
  }
  const command: string[] = [];
  if (plan.identity.kind === 'setpriv') {
    command.push(
      plan.identity.setprivPath,
      `--reuid=${plan.uid}`,
      `--regid=${plan.gid}`,
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
    );
  }
  command.push(plan.envPath);
  if (!('PWD' in env)) command.push('-u', 'PWD');
  command.push('--', ...late, ...(plan.egress?.argvPrefix ?? []), ...spec.argv);
  return { options, argsFile: fileArgs.map((a) => `${a}\0`).join(''), command };
}

/** Encodes an org or plugin id as one safe path segment. */
export function pathSegment(id: string): string {
  const seg = encodeURIComponent(id);
  return seg === '.' || seg === '..' || seg === '' ? `_${seg}` : seg;
}

/** True when `a` equals `b` or one contains the other. */
export function pathsOverlap(a: string, b: string): boolean {
  const x = path.resolve(a);
  const y = path.resolve(b);
  const within = (inner: string, outer: string) =>
    inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
  return within(x, y) || within(y, x);
}
