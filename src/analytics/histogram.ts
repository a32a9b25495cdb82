/**
 * A fixed latency histogram shared by every rollup row, so rows merge by adding bucket counts. Bucket i
 * counts calls with latency <= BOUNDS_MS[i] (and > BOUNDS_MS[i-1]); the last bucket is everything above
 * the last bound. Changing the bounds invalidates stored rows: append-only, never edit.
 */
export const BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;
export const BUCKETS = BOUNDS_MS.length + 1;

export function emptyBuckets(): number[] {
  return new Array<number>(BUCKETS).fill(0);
}

export function bucketOf(ms: number): number {
  for (let i = 0; i < BOUNDS_MS.length; i++) if (ms <= (BOUNDS_MS[i] ?? Infinity)) return i;
  return BOUNDS_MS.length;
}

/** Adds `b` into `a` (in place); missing entries count as 0. */
export function addBuckets(a: number[], b: readonly number[]): number[] {
  for (let i = 0; i < BUCKETS; i++) a[i] = (a[i] ?? 0) + (b[i] ?? 0);
  return a;
}

/**
 * The `q` quantile (0..1) estimated from bucket counts, interpolating linearly inside the bucket; the
 * overflow bucket reports twice the last bound. null when there are no calls.
 */
export function quantile(buckets: readonly number[], q: number): number | null {
  let total = 0;
  for (const c of buckets) total += c;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    const c = buckets[i] ?? 0;
    if (c === 0) continue;
    if (seen + c >= rank) {
      const lo = i === 0 ? 0 : (BOUNDS_MS[i - 1] ?? 0);
      const hi = BOUNDS_MS[i] ?? lo * 2;
      return Math.round((lo + ((hi - lo) * (rank - seen)) / c) * 100) / 100;
    }
    seen += c;
  }
  return BOUNDS_MS[BOUNDS_MS.length - 1] ?? null;
}
