import path from 'node:path';

const SENSITIVE = /pass|secret|token|key|auth|credential|cookie/i;

/**
 * A copy of tool arguments safe for the audit log: values under sensitive-looking keys are replaced,
 * strings are cut to 200 chars, depth and breadth are bounded.
 */
export function sanitizeArguments(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 200)}…` : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 4) return '[nested]';
  if (Array.isArray(value)) return value.slice(0, 20).map((v) => sanitizeArguments(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, 50)) {
    out[k] = SENSITIVE.test(k) ? '[redacted]' : sanitizeArguments(v, depth + 1);
  }
  return out;
}

/**
 * `text` (command output, an error message) with the plugin's own folder shown as `.` and every other given
 * host path (data dir, plugins dir, install root...) and every ancestor of the plugin folder as `<host>`,
 * so nothing tells a caller where or what is outside the plugin's own folder. A path is replaced only as
 * whole segments; longer paths first. Control characters but \n and \t are removed.
 */
export function redactHostPaths(
  text: string,
  paths: { pluginDir: string; hostPaths: readonly string[] },
): string {
  const ancestors: string[] = [];
  for (let d = path.dirname(paths.pluginDir); d !== path.dirname(d); d = path.dirname(d)) ancestors.push(d);
  const pairs: [string, string][] = [
    [paths.pluginDir, '.'] as [string, string],
    ...[...paths.hostPaths, ...ancestors].map((p): [string, string] => [p, '<host>']),
  ].filter((pair) => pair[0].length > 1);
  pairs.sort((a, b) => b[0].length - a[0].length);
  let out = text;
  for (const [p, replacement] of pairs) {
    const escaped = p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`${escaped}(?=[/\\s:'"\`,;)]|$)`, 'gm'), replacement);
  }
  // eslint-disable-next-line no-control-regex
  return out.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}
