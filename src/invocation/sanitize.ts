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
