import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/security/rate-limiter.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('RateLimiter', () => {
  it('allows a burst, then refuses with the exact wait, then refills at the rate', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerMinute: 60, burst: 3, now: c.now });
    expect(rl.take('a')).toEqual({ ok: true, remaining: 2 });
    expect(rl.take('a')).toEqual({ ok: true, remaining: 1 });
    expect(rl.take('a')).toEqual({ ok: true, remaining: 0 });
    expect(rl.take('a')).toEqual({ ok: false, retryAfterMs: 1000 });
    c.advance(400);
    expect(rl.take('a')).toEqual({ ok: false, retryAfterMs: 600 });
    c.advance(600);
    expect(rl.take('a')).toEqual({ ok: true, remaining: 0 });
    c.advance(60_000);
    expect(rl.take('a')).toEqual({ ok: true, remaining: 2 });
  });

  it('keeps keys independent', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerMinute: 1, burst: 1, now: c.now });
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('a').ok).toBe(false);
    expect(rl.take('b').ok).toBe(true);
  });

  it('charges cost; a refused take consumes nothing; cost above burst never fits', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerMinute: 600, burst: 10, now: c.now });
    expect(rl.take('k', 8)).toEqual({ ok: true, remaining: 2 });
    expect(rl.take('k', 5)).toEqual({ ok: false, retryAfterMs: 300 });
    expect(rl.take('k', 2)).toEqual({ ok: true, remaining: 0 });
    expect(rl.take('k', 11)).toEqual({ ok: false, retryAfterMs: Number.POSITIVE_INFINITY });
    expect(() => rl.take('k', -1)).toThrow(RangeError);
  });

  it('tolerates a clock going backwards', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerMinute: 60, burst: 1, now: c.now });
    expect(rl.take('a').ok).toBe(true);
    c.advance(-5000);
    expect(rl.take('a')).toEqual({ ok: false, retryAfterMs: 1000 });
  });

  it('applies setLimit overrides over the resolver over defaults', () => {
    const c = clock();
    const rl = new RateLimiter({
      ratePerMinute: 60,
      burst: 1,
      now: c.now,
      resolve: (key) => (key.startsWith('vip:') ? { ratePerMinute: 600, burst: 5 } : undefined),
    });
    expect(rl.limitFor('x')).toEqual({ ratePerMinute: 60, burst: 1 });
    expect(rl.limitFor('vip:1')).toEqual({ ratePerMinute: 600, burst: 5 });
    for (let i = 0; i < 5; i++) expect(rl.take('vip:1').ok).toBe(true);
    expect(rl.take('vip:1')).toEqual({ ok: false, retryAfterMs: 100 });

    rl.setLimit('vip:1', { ratePerMinute: 6, burst: 2 });
    expect(rl.take('vip:1')).toEqual({ ok: false, retryAfterMs: 10_000 });
    rl.setLimit('x', { ratePerMinute: 60, burst: 3 });
    expect(rl.take('x', 3).ok).toBe(true);
    rl.setLimit('x', undefined);
    expect(rl.limitFor('x')).toEqual({ ratePerMinute: 60, burst: 1 });
    expect(() => rl.setLimit('y', { ratePerMinute: 0, burst: 1 })).toThrow(
      /ratePerMinute must be a positive number/,
    );
  });

  it('caps tokens at a lowered burst', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerMinute: 60, burst: 10, now: c.now });
    expect(rl.take('a').ok).toBe(true);
    rl.setLimit('a', { ratePerMinute: 60, burst: 2 });
    expect(rl.take('a')).toEqual({ ok: true, remaining: 1 });
  });

  it('bounds memory with LRU eviction (an evicted key starts full)', () => {
    const c = clock();
    const rl = new RateLimiter({ ratePerMinute: 1, burst: 1, now: c.now, maxKeys: 2 });
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('b').ok).toBe(true);
    expect(rl.take('a').ok).toBe(false); // a is now most recent
    expect(rl.take('c').ok).toBe(true); // evicts b
    expect(rl.size).toBe(2);
    expect(rl.take('a').ok).toBe(false); // a kept its empty bucket
    expect(rl.take('b').ok).toBe(true); // b was evicted and starts full
    rl.reset('a');
    expect(rl.take('a').ok).toBe(true);
  });
});
