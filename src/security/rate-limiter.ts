export interface RateLimit {
  /** Sustained rate: tokens added per minute. */
  ratePerMinute: number;
  /** Bucket size: the most calls allowed at once after a quiet period. */
  burst: number;
}

export interface RateLimiterOptions extends RateLimit {
  /** Clock in ms; default Date.now. Inject in tests. */
  now?: () => number;
  /** Most keys tracked at once; the least recently used bucket is dropped beyond it. Default 10 000. */
  maxKeys?: number;
  /**
   * Per-key limit, asked on every take() for keys without a setLimit override; return undefined for the
   * default. Must be cheap and synchronous.
   */
  resolve?: (key: string) => RateLimit | undefined;
}

export type TakeResult = { ok: true; remaining: number } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  at: number;
}

function checkLimit(limit: RateLimit, what: string): void {
  if (!(limit.ratePerMinute > 0) || !Number.isFinite(limit.ratePerMinute))
    throw new RangeError(`${what}: ratePerMinute must be a positive number`);
  if (!(limit.burst >= 1) || !Number.isFinite(limit.burst))
    throw new RangeError(`${what}: burst must be >= 1`);
}

/**
 * Token buckets keyed by string (e.g. `org:plugin`, an API key prefix). Pure: no timers, state advances
 * only when take() is called, using the injected clock. A new or evicted key starts with a full bucket.
 * Limit precedence: setLimit override > resolve callback > constructor defaults. Changing a key's limit
 * keeps its current tokens, capped at the new burst.
 */
export class RateLimiter {
  private readonly defaults: RateLimit;
  private readonly now: () => number;
  private readonly maxKeys: number;
  private readonly resolve: ((key: string) => RateLimit | undefined) | undefined;
  private readonly buckets = new Map<string, Bucket>();
  private readonly overrides = new Map<string, RateLimit>();

  constructor(options: RateLimiterOptions) {
    checkLimit(options, 'RateLimiter');
    this.defaults = { ratePerMinute: options.ratePerMinute, burst: options.burst };
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 10_000;
    if (!(this.maxKeys >= 1)) throw new RangeError('RateLimiter: maxKeys must be >= 1');
    this.resolve = options.resolve;
  }

  /**
   * Takes `cost` tokens from `key`'s bucket. On refusal nothing is taken and `retryAfterMs` says when
   * the same call would pass; it is Infinity when `cost` exceeds the key's burst (can never pass).
   */
  take(key: string, cost = 1): TakeResult {
    if (!(cost >= 0) || !Number.isFinite(cost)) throw new RangeError('RateLimiter.take: cost must be >= 0');
    const limit = this.limitFor(key);
    const now = this.now();
    const perMs = limit.ratePerMinute / 60_000;
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      const elapsed = Math.max(0, now - bucket.at);
      bucket.tokens = Math.min(limit.burst, bucket.tokens + elapsed * perMs);
      bucket.at = now;
    } else {
      bucket = { tokens: limit.burst, at: now };
    }
    this.buckets.set(key, bucket);
    this.evict();
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return { ok: true, remaining: Math.floor(bucket.tokens) };
    }
    if (cost > limit.burst) return { ok: false, retryAfterMs: Number.POSITIVE_INFINITY };
    return { ok: false, retryAfterMs: Math.ceil((cost - bucket.tokens) / perMs) };
  }

  /** Sets (or with undefined, removes) a fixed limit for one key. Overrides are not evicted. */
  setLimit(key: string, limit: RateLimit | undefined): void {
    if (limit === undefined) {
      this.overrides.delete(key);
      return;
    }
    checkLimit(limit, `RateLimiter.setLimit(${key})`);
    this.overrides.set(key, { ratePerMinute: limit.ratePerMinute, burst: limit.burst });
  }

  /** The limit that applies to `key` now. */
  limitFor(key: string): RateLimit {
    const limit = this.overrides.get(key) ?? this.resolve?.(key) ?? this.defaults;
    if (limit !== this.defaults && !this.overrides.has(key)) checkLimit(limit, `RateLimiter resolve(${key})`);
    return limit;
  }

  /** Forgets `key`'s bucket (it starts full next time). Keeps any setLimit override. */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  /** Number of buckets tracked (<= maxKeys). */
  get size(): number {
    return this.buckets.size;
  }

  private evict(): void {
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (oldest.done) return;
      this.buckets.delete(oldest.value);
    }
  }
}
