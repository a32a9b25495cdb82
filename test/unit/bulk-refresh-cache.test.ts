import { describe, expect, it } from 'vitest';
import { BulkRefreshCache } from '../../src/tenancy/bulk-refresh-cache.js';

/** A cache over a fake table, with a hand-moved clock; every load is recorded. */
function setup(table: Map<string, number>, options: { ttlMs?: number; maxEntries?: number } = {}) {
  let now = 1_000;
  const loads: string[][] = [];
  let fail: Error | undefined;
  let gate: Promise<void> | undefined;
  const cache = new BulkRefreshCache<number>(
    async (keys) => {
      loads.push([...keys].sort());
      if (gate) await gate;
      if (fail) throw fail;
      return new Map(keys.filter((k) => table.has(k)).map((k) => [k, table.get(k) as number]));
    },
    { ttlMs: options.ttlMs ?? 1_000, maxEntries: options.maxEntries ?? 100, now: () => now },
  );
  return {
    cache,
    loads,
    advance: (ms: number) => void (now += ms),
    failWith: (err: Error | undefined) => void (fail = err),
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

describe('BulkRefreshCache', () => {
  it('loads the misses of one turn in one call, and serves them from memory until the ttl', async () => {
    const t = setup(
      new Map([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]),
    );
    expect(await Promise.all([t.cache.get('a'), t.cache.get('b'), t.cache.get('a')])).toEqual([1, 2, 1]);
    expect(t.loads).toEqual([['a', 'b']]);
    t.advance(999);
    expect(await t.cache.get('b')).toBe(2);
    expect(t.loads).toHaveLength(1);
    t.advance(1);
    expect(await t.cache.get('b')).toBe(2);
    expect(t.loads).toHaveLength(2);
  });

  it('refreshes used entries due within half the ttl with the next miss, so N keys cost ~2 loads per ttl', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const t = setup(new Map(keys.map((k, i) => [k, i])));
    // a steady round-robin over 100 keys, one lookup per ms, for 10 ttls
    for (let i = 0; i < 10_000; i++) {
      expect(await t.cache.get(keys[i % 100] as string)).toBe(i % 100);
      t.advance(1);
    }
    // the first round meets each key cold, one by one (100 loads); after that one load per key would be
    // 100 loads per ttl
    expect(t.loads.slice(100).length).toBeGreaterThan(0);
    expect(t.loads.slice(100).length).toBeLessThanOrEqual(2 * 10);
  });

  it('never serves a value read more than ttlMs ago', async () => {
    const table = new Map([['a', 1]]);
    const t = setup(table);
    expect(await t.cache.get('a')).toBe(1);
    table.set('a', 2);
    for (let ms = 0; ms < 3_000; ms += 100) {
      t.advance(100);
      const v = await t.cache.get('a');
      // the last load was at most 1000 ms ago, so it was made after the change once 1000 ms have passed
      if (ms >= 1_000) expect(v).toBe(2);
    }
  });

  it('does not refresh an entry nobody used since it was read, and drops it once expired', async () => {
    const t = setup(
      new Map([
        ['idle', 1],
        ['busy', 2],
        ['new', 3],
      ]),
    );
    await t.cache.get('idle');
    await t.cache.get('busy');
    t.advance(100);
    await t.cache.get('busy'); // used
    t.advance(1_000); // both expired
    await t.cache.get('new');
    // the miss of 'new' takes along 'busy' (used, due) but not 'idle' (never used again)
    expect(t.loads.at(-1)).toEqual(['busy', 'new']);
    expect(t.cache.size()).toBe(2);
  });

  it('does not cache a key the loader does not answer', async () => {
    const t = setup(new Map([['a', 1]]));
    expect(await t.cache.get('wrong')).toBeUndefined();
    expect(await t.cache.get('wrong')).toBeUndefined();
    expect(t.loads).toEqual([['wrong'], ['wrong']]);
    expect(t.cache.size()).toBe(0);
  });

  it('a failed load rejects its waiters, caches nothing, and the next get loads again', async () => {
    const t = setup(new Map([['a', 1]]));
    t.failWith(new Error('database down'));
    await expect(Promise.all([t.cache.get('a'), t.cache.get('a')])).rejects.toThrow('database down');
    expect(t.loads).toHaveLength(1);
    t.failWith(undefined);
    expect(await t.cache.get('a')).toBe(1);
  });

  it('a load overlapping a local write does not put back what the write replaced or removed', async () => {
    const table = new Map([
      ['a', 1],
      ['b', 2],
    ]);
    const t = setup(table);
    const release = t.hold();
    const pending = t.cache.get('a');
    await Promise.resolve();
    await Promise.resolve();
    t.cache.set('a', 10); // a local write while the load (which read 1) is in flight
    release();
    expect(await pending).toBe(1); // the waiter gets what the load read
    expect(t.cache.fresh('a')).toBe(10); // the cache keeps the write

    await t.cache.get('b');
    t.advance(1_000);
    const release2 = t.hold();
    const again = t.cache.get('b');
    await Promise.resolve();
    await Promise.resolve();
    t.cache.deleteWhere((v) => v === 2); // e.g. a revocation
    release2();
    await again;
    expect(t.cache.fresh('b')).toBeUndefined();
  });

  it('keeps at most maxEntries, dropping the oldest read first', async () => {
    const t = setup(
      new Map([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]),
      { maxEntries: 2 },
    );
    await t.cache.get('a');
    t.advance(1);
    await t.cache.get('b');
    t.advance(1);
    await t.cache.get('c');
    expect(t.cache.size()).toBe(2);
    expect(t.cache.fresh('a')).toBeUndefined();
    expect(t.cache.fresh('c')).toBe(3);
  });
});
