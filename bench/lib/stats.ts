/** Latency summary of one measurement, in milliseconds. */
export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array; 0 for an empty one. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((s, x) => s + x, 0) / sorted.length : 0;
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean,
  };
}

export function median(samples: readonly number[]): number {
  return percentile(
    [...samples].sort((a, b) => a - b),
    50,
  );
}

/** Times `n` sequential runs of `fn` (after `warmup` untimed runs); milliseconds per run. */
export async function timeSequential(
  n: number,
  warmup: number,
  fn: (i: number) => Promise<void>,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * Times `n` sequential runs of each of `fns`, alternating blocks of `block` runs so machine-load drift
 * hits all of them alike (after `warmup` untimed runs of each). Milliseconds per run, one array per fn.
 */
export async function timeInterleaved(
  n: number,
  warmup: number,
  fns: readonly ((i: number) => Promise<void>)[],
  block = 100,
): Promise<number[][]> {
  for (const fn of fns) for (let i = 0; i < warmup; i++) await fn(i);
  const out = fns.map(() => [] as number[]);
  for (let done = 0; done < n; done += block) {
    for (const [k, fn] of fns.entries()) {
      for (let i = done; i < Math.min(n, done + block); i++) {
        const t0 = performance.now();
        await fn(i);
        out[k]?.push(performance.now() - t0);
      }
    }
  }
  return out;
}

/** Result of a closed-loop load run: `concurrency` workers issue `total` calls back to back. */
export interface LoadResult {
  total: number;
  errors: number;
  seconds: number;
  throughput: number;
  latency: Summary;
  firstError: string | undefined;
}

/**
 * Runs `total` calls with `concurrency` in flight; a call that rejects counts as an error (the run
 * goes on). Latency is per call, from issue to settle.
 */
export async function runLoad(
  total: number,
  concurrency: number,
  call: (i: number) => Promise<void>,
): Promise<LoadResult> {
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const t0 = performance.now();
      try {
        await call(i);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      latencies.push(performance.now() - t0);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { total, errors, seconds, throughput: total / seconds, latency: summarize(latencies), firstError };
}
