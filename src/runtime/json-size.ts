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

/** True when `value` nests arrays/objects more than `maxDepth` levels deep. Iterative. */
export function exceedsDepth(value: unknown, maxDepth = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1]);
  }
  return false;
}
