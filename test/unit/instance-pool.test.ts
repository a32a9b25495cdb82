import { describe, expect, it } from 'vitest';
import { CapacityError } from '../../src/errors.js';
import { SlotPool } from '../../src/runtime/instance/pool.js';
import { backoffDelay, canTransition, holdsSlot } from '../../src/runtime/instance/state.js';
import { ActivityBuffer } from '../../src/runtime/instance/activity.js';
import { createLogger } from '../../src/logger.js';

describe('instance state table', () => {
  it('allows only the lifecycle edges', () => {
    expect(canTransition('stopped', 'starting')).toBe(true);
    expect(canTransition('starting', 'running')).toBe(true);
    expect(canTransition('running', 'stopping')).toBe(true);
    expect(canTransition('running', 'failed')).toBe(true);
    expect(canTransition('failed', 'starting')).toBe(true);
    expect(canTransition('stopped', 'running')).toBe(false);
    expect(canTransition('stopping', 'running')).toBe(false);
    expect(canTransition('failed', 'running')).toBe(false);
    expect(canTransition('running', 'starting')).toBe(false);
  });

  it('counts starting and running instances against the pool', () => {
    expect(
      ['stopped', 'starting', 'running', 'stopping', 'failed'].filter((k) => holdsSlot(k as never)),
    ).toEqual(['starting', 'running']);
  });

  it('restarts at once after one failure, then backs off exponentially from the base up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 60].map((n) => backoffDelay(n, 100, 1_000))).toEqual([
      0, 0, 100, 200, 400, 800, 1_000, 1_000,
    ]);
  });
});

describe('SlotPool', () => {
  it('grants up to the limit, then serves waiters in FIFO order as slots free', async () => {
    const pool = new SlotPool(Date.now);
    expect(pool.tryAcquire('p', 'a', 2)).toBe(true);
    expect(pool.tryAcquire('p', 'b', 2)).toBe(true);
    expect(pool.tryAcquire('p', 'c', 2)).toBe(false);
    const order: string[] = [];
    const waits = ['c', 'd', 'e'].map((h) =>
      pool.acquire('p', h, 2, { pluginId: 'plug', timeoutMs: 5_000 }).then(() => order.push(h)),
    );
    expect(pool.waiting('p')).toBe(3);
    pool.release('p', 'a');
    pool.release('p', 'a'); // idempotent: frees nothing more
    await Promise.resolve();
    expect(pool.waiting('p')).toBe(2);
    pool.release('p', 'b');
    pool.release('p', 'c');
    await Promise.all(waits);
    expect(order).toEqual(['c', 'd', 'e']);
    expect(pool.holders('p')).toBe(2);
  });

  it('times a waiter out with a CapacityError naming the plugin and limit', async () => {
    const pool = new SlotPool(Date.now);
    pool.tryAcquire('p', 'a', 1);
    const err = await pool.acquire('p', 'b', 1, { pluginId: 'plug', timeoutMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapacityError);
    expect((err as Error).message).toMatch(/plug is at its limit of 1/);
    expect(pool.waiting()).toBe(0);
  });

  it('removes an aborted waiter and raises the limit for waiters when it grows', async () => {
    const pool = new SlotPool(Date.now);
    pool.tryAcquire('p', 'a', 1);
    const ac = new AbortController();
    const aborted = pool.acquire('p', 'b', 1, { pluginId: 'plug', timeoutMs: 5_000, signal: ac.signal });
    const kept = pool.acquire('p', 'c', 1, { pluginId: 'plug', timeoutMs: 5_000 });
    ac.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(pool.waiting('p')).toBe(1);
    // the limit grows to 3: queued 'c' is served first, then 'd' takes the last slot
    expect(pool.tryAcquire('p', 'd', 3)).toBe(true);
    await kept;
    expect(pool.holders('p')).toBe(3);
    expect(pool.tryAcquire('p', 'e', 3)).toBe(false);
  });

  it('rejectAll empties every queue', async () => {
    const pool = new SlotPool(Date.now);
    pool.tryAcquire('p', 'a', 1);
    const w = pool.acquire('p', 'b', 1, { pluginId: 'plug', timeoutMs: 5_000 });
    pool.rejectAll(new Error('shutting down'));
    await expect(w).rejects.toThrow('shutting down');
    expect(pool.waiting()).toBe(0);
  });
});

describe('ActivityBuffer', () => {
  it('keeps the newest time per pair and writes one batch per flush', async () => {
    const batches: { orgId: string; at: Date }[][] = [];
    const buffer = new ActivityBuffer(
      { recordActivity: async (entries) => void batches.push([...entries]) },
      createLogger({ level: 'silent' }),
      60_000,
    );
    buffer.touch('o1', 'p', 10);
    buffer.touch('o1', 'p', 30);
    buffer.touch('o1', 'p', 20);
    buffer.touch('o2', 'p', 5);
    await buffer.flush();
    await buffer.flush();
    expect(batches).toHaveLength(1);
    expect(batches[0]?.map((e) => [e.orgId, e.at.getTime()])).toEqual([
      ['o1', 30],
      ['o2', 5],
    ]);
  });

  it('keeps entries after a failed write and retries them', async () => {
    let fail = true;
    const written: string[] = [];
    const buffer = new ActivityBuffer(
      {
        recordActivity: async (entries) => {
          if (fail) throw new Error('db down');
          written.push(...entries.map((e) => e.orgId));
        },
      },
      createLogger({ level: 'silent' }),
      60_000,
    );
    buffer.touch('o1', 'p', 1);
    await buffer.flush();
    expect(buffer.pending()).toBe(1);
    fail = false;
    await buffer.close();
    expect(written).toEqual(['o1']);
  });
});
