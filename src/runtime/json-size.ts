/**
 * Approximate in-memory size of a JSON value: string characters (keys included) plus 8 per other
 * value. Iterative, so a deeply nested result cannot overflow the stack.
 */
export function approxBytes(value: unknown): number {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') total += v.length;
    else if (v === null || typeof v !== 'object') total += 8;
    else if (Array.isArray(v)) {
      total += 8;
      for (const x of v) stack.push(x);
    } else {
      total += 8;
      for (const [k, x] of Object.entries(v)) {
        total += k.length;
        stack.push(x);
      }
    }
  }
  return total;
}

/** Deepest nesting of arrays and objects a plugin's answer may have (JSON.stringify and recursive code stay safe). */
export const MAX_JSON_DEPTH = 512;

/**
 * approxBytes and the nesting check in ONE walk: `bytes` as approxBytes counts them, `tooDeep` when arrays
 * and objects nest more than `maxDepth` levels (the walk stops there; `bytes` is then partial). Iterative.
 */
export function measureJson(value: unknown, maxDepth = MAX_JSON_DEPTH): { bytes: number; tooDeep: boolean } {
  let bytes = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v === 'string') bytes += v.length;
    else if (v === null || typeof v !== 'object') bytes += 8;
    else {
      if (depth >= maxDepth) return { bytes, tooDeep: true };
      bytes += 8;
      if (Array.isArray(v)) for (const x of v) stack.push([x, depth + 1]);
      else
        for (const [k, x] of Object.entries(v)) {
          bytes += k.length;
          stack.push([x, depth + 1]);
        }
    }
  }
  return { bytes, tooDeep: false };
}
