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
