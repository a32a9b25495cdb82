import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  afterFailure,
  assertTransition,
  canTransition,
  DELIVERY_STATUSES,
  sourcesOf,
} from '../../src/events/delivery-state.js';
import { matchesEventType } from '../../src/events/bus.js';
import {
  haySignatureHeader,
  verifyBodyHmac,
  verifyHaySignature,
  verifyToken,
} from '../../src/events/signing.js';
import { OutboxWorker } from '../../src/events/worker.js';
import type { OutboxStore } from '../../src/events/outbox.js';
import type { EventsMetrics } from '../../src/events/metrics.js';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { createLogger } from '../../src/logger.js';
import { waitFor } from '../helpers/processes.js';

describe('delivery state table', () => {
  it('allows exactly the documented edges', () => {
    const edges = DELIVERY_STATUSES.flatMap((from) =>
      DELIVERY_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`),
    );
    expect(edges.sort()).toEqual(
      [
        'pending->delivering',
        'delivering->delivered',
        'delivering->pending',
        'delivering->dead',
        'delivering->delivering',
        'dead->pending',
      ].sort(),
    );
    expect(() => assertTransition('delivered', 'pending')).toThrow(/delivered -> pending is not allowed/);
    expect(sourcesOf('pending').sort()).toEqual(['dead', 'delivering']);
    expect(sourcesOf('delivered')).toEqual(['delivering']);
  });

  it('backs off exponentially with jitter in [delay/2, delay], capped, and dead-letters at the limit', () => {
    const opts = { maxAttempts: 5, baseMs: 100, maxMs: 1_000, permanent: false };
    expect(afterFailure(1, { ...opts, random: () => 1 })).toEqual({ kind: 'pending', delayMs: 100 });
    expect(afterFailure(1, { ...opts, random: () => 0 })).toEqual({ kind: 'pending', delayMs: 50 });
    expect(afterFailure(3, { ...opts, random: () => 1 })).toEqual({ kind: 'pending', delayMs: 400 });
    expect(afterFailure(4, { ...opts, random: () => 1 })).toEqual({ kind: 'pending', delayMs: 800 });
    expect(afterFailure(4, { ...opts, maxMs: 500, random: () => 1 })).toEqual({
      kind: 'pending',
      delayMs: 500,
    });
    expect(afterFailure(5, opts)).toEqual({ kind: 'dead' });
    expect(afterFailure(1, { ...opts, permanent: true })).toEqual({ kind: 'dead' });
  });
});

describe('event type patterns', () => {
  it('matches exact types, prefix.* and *', () => {
    expect(matchesEventType('ticket.created', 'ticket.created')).toBe(true);
    expect(matchesEventType('ticket.*', 'ticket.created')).toBe(true);
    expect(matchesEventType('ticket.*', 'tickets.created')).toBe(false);
    expect(matchesEventType('ticket.*', 'ticket')).toBe(false);
    expect(matchesEventType('*', 'anything')).toBe(true);
    expect(matchesEventType('ticket.created', 'ticket.created.v2')).toBe(false);
  });
});

describe('signatures', () => {
  const now = 1_700_000_000;
  it('Hay-Signature verifies with any listed secret, inside the tolerance only', () => {
    const header = haySignatureHeader(['s1', 's2'], now, '{"a":1}');
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    const opts = { toleranceSeconds: 300, nowSeconds: now + 10 };
    expect(verifyHaySignature(header, '{"a":1}', ['s2'], opts)).toEqual({ ok: true });
    expect(verifyHaySignature(header, '{"a":2}', ['s1'], opts)).toEqual({
      ok: false,
      reason: 'signature does not match',
    });
    expect(verifyHaySignature(header, '{"a":1}', ['s1'], { ...opts, nowSeconds: now + 301 })).toEqual({
      ok: false,
      reason: 'signature timestamp outside the tolerance',
    });
    expect(verifyHaySignature('v1=abc', '{}', ['s1'], opts)).toEqual({
      ok: false,
      reason: 'signature header malformed',
    });
    expect(verifyHaySignature(undefined, '{}', ['s1'], opts)).toEqual({
      ok: false,
      reason: 'signature header missing',
    });
  });

  it('body HMAC and tokens compare exactly', () => {
    const body = Buffer.from('payload');
    expect(
      verifyBodyHmac(`sha256=${'0'.repeat(64)}`, body, 'key', { prefix: 'sha256=', encoding: 'hex' }),
    ).toBe(false);
    const good = createHmac('sha256', 'key').update(body).digest('hex');
    expect(verifyBodyHmac(`sha256=${good}`, body, 'key', { prefix: 'sha256=', encoding: 'hex' })).toBe(true);
    expect(verifyBodyHmac(good, body, 'key', { prefix: 'sha256=', encoding: 'hex' })).toBe(false);
    expect(verifyToken('Bearer abc', 'Bearer abc')).toBe(true);
    expect(verifyToken('Bearer ab', 'Bearer abc')).toBe(false);
    expect(verifyToken(undefined, 'x')).toBe(false);
  });
});

describe('OutboxWorker', () => {
  it('start() and close() are idempotent and close stops polling', async () => {
    let claims = 0;
    const store = {
      claim: async () => {
        claims++;
        return { leaseId: 'l', claimed: [] };
      },
    } as unknown as OutboxStore;
    const worker = new OutboxWorker({
      store,
      deliverers: { plugin: async () => undefined, webhook: async () => undefined },
      logger: createLogger({ level: 'silent' }),
      metrics: {} as EventsMetrics,
      audit: {} as AuditLog,
      options: {
        pollIntervalMs: 10,
        leaseMs: 1_000,
        timeoutMs: 100,
        concurrency: 2,
        backoffBaseMs: 1,
        backoffMaxMs: 1,
        drainMs: 10,
      },
    });
    worker.start();
    worker.start();
    await waitFor(() => claims > 3, 'polls');
    await worker.close();
    await worker.close();
    const after = claims;
    worker.start();
    worker.kick();
    // ten poll intervals: a live timer would have claimed again
    await new Promise((r) => setTimeout(r, 100));
    expect(claims).toBe(after);
  });
});

describe('OutboxWorker on shutdown', () => {
  it('aborts an attempt still running after the drain period and releases it for retry, counting nothing', async () => {
    const calls: string[] = [];
    let started = false;
    const store = {
      claim: async () =>
        started
          ? { leaseId: 'l', claimed: [] }
          : ((started = true),
            {
              leaseId: 'l',
              claimed: [
                {
                  delivery: {
                    id: 'd1',
                    organizationId: 'o',
                    targetKind: 'webhook',
                    target: 'e',
                    attempts: 1,
                    maxAttempts: 3,
                  },
                  event: { id: 'e1', type: 't', createdAt: new Date() },
                },
              ],
            }),
      release: async (id: string) => (calls.push(`release:${id}`), true),
      markRetry: async () => (calls.push('retry'), true),
      markDead: async () => (calls.push('dead'), true),
      markDelivered: async () => (calls.push('delivered'), true),
    } as unknown as OutboxStore;
    let aborted = false;
    const worker = new OutboxWorker({
      store,
      deliverers: {
        plugin: async () => undefined,
        webhook: (_c, signal) =>
          new Promise((_resolve, reject) =>
            signal.addEventListener('abort', () => {
              aborted = true;
              reject(new Error('aborted'));
            }),
          ),
      },
      logger: createLogger({ level: 'silent' }),
      metrics: {} as EventsMetrics,
      audit: {} as AuditLog,
      options: {
        pollIntervalMs: 1_000,
        leaseMs: 60_000,
        timeoutMs: 30_000,
        concurrency: 1,
        backoffBaseMs: 1,
        backoffMaxMs: 1,
        drainMs: 20,
      },
    });
    worker.start();
    await waitFor(() => worker.inFlight === 1, 'the attempt to start');
    await worker.close();
    expect(aborted).toBe(true);
    expect(calls).toEqual(['release:d1']);
    expect(worker.inFlight).toBe(0);
  });
});
