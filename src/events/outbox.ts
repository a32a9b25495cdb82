import { randomUUID } from 'node:crypto';
import { alias } from 'drizzle-orm/pg-core';
import { and, desc, eq, inArray, isNull, lt, lte, notExists, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { storableJson, storableText } from '../db/storable.js';
import { eventDeliveries, events, type EventDeliveryRow } from '../db/schema-events.js';
import { sourcesOf, type DeliveryStatus } from './delivery-state.js';

export type EventRow = typeof events.$inferSelect;

/** A delivery to insert with its event. */
export interface NewDelivery {
  targetKind: 'plugin' | 'webhook';
  target: string;
  handler?: string;
  /** Set for ordered targets; deliveries sharing it run one at a time in insertion order. */
  orderingKey?: string;
}

export interface NewEvent {
  organizationId: string;
  type: string;
  source: string;
  payload: unknown;
  idempotencyKey?: string | undefined;
}

export interface Claimed {
  delivery: EventDeliveryRow;
  event: EventRow;
}

/** Delivery as the API shows it: no lease ids. */
export interface DeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  targetKind: 'plugin' | 'webhook';
  target: string;
  handler: string | null;
  status: DeliveryStatus;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

const now = sql`now()`;
const msFromNow = (ms: number) => sql`now() + ${Math.max(0, Math.round(ms))} * interval '1 millisecond'`;
const d = eventDeliveries;

/**
 * The outbox tables. Every state change is one guarded UPDATE whose allowed source statuses come from
 * the transition table (delivery-state.ts); a worker's writes also require its lease id, so a worker
 * whose lease expired cannot overwrite the newer holder's outcome. Safe for several host nodes on one
 * PostgreSQL: claims use FOR UPDATE SKIP LOCKED, and all times are the database's `now()`.
 */
export class OutboxStore {
  constructor(private readonly db: Db) {}

  /**
   * Inserts the event and its deliveries in one transaction. With an idempotency key already used by
   * the same (org, source), nothing is inserted and the earlier event is returned with `duplicate`.
   * `targets` is read before the transaction opens (PGlite has one connection: a read on `db` inside
   * the transaction would wait for it forever).
   */
  async accept(
    event: NewEvent,
    maxAttempts: number,
    targets: () => Promise<NewDelivery[]> | NewDelivery[],
  ): Promise<{ event: EventRow; duplicate: boolean; deliveryIds: string[] }> {
    const list = await targets();
    return this.db.transaction(async (tx) => {
      const [inserted] = await tx
        .insert(events)
        .values({
          organizationId: event.organizationId,
          type: event.type,
          source: event.source,
          // an inbound request's body or query may hold NUL (binary data, a JSON \u0000)
          payload: storableJson(event.payload),
          idempotencyKey: event.idempotencyKey ?? null,
        })
        .onConflictDoNothing()
        .returning();
      if (!inserted) {
        const [existing] = await tx
          .select()
          .from(events)
          .where(
            and(
              eq(events.organizationId, event.organizationId),
              eq(events.source, event.source),
              eq(events.idempotencyKey, event.idempotencyKey ?? ''),
            ),
          );
        if (!existing) throw new Error('outbox: idempotency conflict without an existing event');
        const ids = await tx.select({ id: d.id }).from(d).where(eq(d.eventId, existing.id));
        return { event: existing, duplicate: true, deliveryIds: ids.map((r) => r.id) };
      }
      if (list.length === 0) return { event: inserted, duplicate: false, deliveryIds: [] };
      const rows = await tx
        .insert(d)
        .values(
          list.map((t) => ({
            organizationId: event.organizationId,
            eventId: inserted.id,
            targetKind: t.targetKind,
            target: t.target,
            handler: t.handler ?? null,
            orderingKey: t.orderingKey ?? null,
            status: 'pending' as const,
            maxAttempts,
          })),
        )
        .returning({ id: d.id });
      return { event: inserted, duplicate: false, deliveryIds: rows.map((r) => r.id) };
    });
  }

  /**
   * Claims up to `limit` due deliveries for `leaseMs` under a fresh lease id: pending ones whose time
   * has come, and delivering ones whose lease expired. An ordered delivery is due only when no earlier
   * delivery with its ordering key is still pending or delivering.
   */
  async claim(limit: number, leaseMs: number): Promise<{ leaseId: string; claimed: Claimed[] }> {
    const leaseId = randomUUID();
    if (limit <= 0) return { leaseId, claimed: [] };
    const prior = alias(eventDeliveries, 'prior');
    const due = this.db
      .select({ id: d.id })
      .from(d)
      .where(
        and(
          or(
            and(eq(d.status, 'pending'), lte(d.nextAttemptAt, now)),
            and(eq(d.status, 'delivering'), lt(d.lockedUntil, now)),
          ),
          or(
            isNull(d.orderingKey),
            notExists(
              this.db
                .select({ one: sql`1` })
                .from(prior)
                .where(
                  and(
                    eq(prior.orderingKey, d.orderingKey),
                    lt(prior.seq, d.seq),
                    inArray(prior.status, ['pending', 'delivering']),
                  ),
                ),
            ),
          ),
        ),
      )
      .orderBy(d.seq)
      .limit(limit)
      .for('update', { skipLocked: true });
    const rows = await this.db
      .update(d)
      .set({
        status: 'delivering',
        attempts: sql`${d.attempts} + 1`,
        leaseId,
        lockedUntil: msFromNow(leaseMs),
        updatedAt: now,
      })
      .where(and(inArray(d.id, due), inArray(d.status, sourcesOf('delivering'))))
      .returning();
    if (rows.length === 0) return { leaseId, claimed: [] };
    const evs = await this.db
      .select()
      .from(events)
      .where(inArray(events.id, [...new Set(rows.map((r) => r.eventId))]));
    const byId = new Map(evs.map((e) => [e.id, e]));
    const claimed: Claimed[] = [];
    for (const r of rows.sort((a, b) => a.seq - b.seq)) {
      const event = byId.get(r.eventId);
      if (event) claimed.push({ delivery: r, event });
    }
    return { leaseId, claimed };
  }

  /** delivering -> delivered, if `leaseId` still holds it. False when the lease was lost. */
  async markDelivered(id: string, leaseId: string): Promise<boolean> {
    return this.transition(id, leaseId, 'delivered', { deliveredAt: now, lastError: null });
  }

  /** delivering -> pending after `delayMs`. `error` may be any text (a target's answer): stored NUL-free. */
  async markRetry(id: string, leaseId: string, delayMs: number, error: string): Promise<boolean> {
    return this.transition(id, leaseId, 'pending', {
      nextAttemptAt: msFromNow(delayMs),
      lastError: storableText(error),
    });
  }

  /** delivering -> dead with the last error (any text, stored NUL-free). */
  async markDead(id: string, leaseId: string, error: string): Promise<boolean> {
    return this.transition(id, leaseId, 'dead', { lastError: storableText(error) });
  }

  /** delivering -> pending now, the attempt given back (host stopping mid-attempt). */
  async release(id: string, leaseId: string): Promise<boolean> {
    return this.transition(id, leaseId, 'pending', {
      nextAttemptAt: now,
      attempts: sql`greatest(${d.attempts} - 1, 0)`,
    });
  }

  /** dead -> pending with a fresh attempt budget. False unless the delivery is the org's and dead. */
  async replay(orgId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .update(d)
      .set({ status: 'pending', attempts: 0, nextAttemptAt: now, updatedAt: now })
      .where(
        and(
          eq(d.id, id),
          eq(d.organizationId, orgId),
          inArray(d.status, sourcesOf('pending')),
          eq(d.status, 'dead'),
        ),
      )
      .returning({ id: d.id });
    return rows.length > 0;
  }

  async get(orgId: string, id: string): Promise<DeliveryView | undefined> {
    const [row] = await this.views(and(eq(d.organizationId, orgId), eq(d.id, id)), 1);
    return row;
  }

  /** The org's deliveries, newest first, `seq < cursor`. */
  async list(
    orgId: string,
    q: {
      status?: DeliveryStatus;
      targetKind?: 'plugin' | 'webhook';
      target?: string;
      cursor?: number;
      limit: number;
    },
  ): Promise<{ deliveries: (DeliveryView & { seq: number })[]; nextCursor: number | null }> {
    const where: SQL[] = [eq(d.organizationId, orgId)];
    if (q.status) where.push(eq(d.status, q.status));
    if (q.targetKind) where.push(eq(d.targetKind, q.targetKind));
    if (q.target) where.push(eq(d.target, q.target));
    if (q.cursor !== undefined) where.push(lt(d.seq, q.cursor));
    const rows = await this.views(and(...where), q.limit + 1);
    const page = rows.slice(0, q.limit);
    return {
      deliveries: page,
      nextCursor: rows.length > q.limit ? (page[page.length - 1]?.seq ?? null) : null,
    };
  }

  /** Counts by status for one org (or all with undefined). */
  async counts(orgId?: string): Promise<Record<DeliveryStatus, number>> {
    const rows = await this.db
      .select({ status: d.status, n: sql<number>`count(*)::int` })
      .from(d)
      .where(orgId ? eq(d.organizationId, orgId) : undefined)
      .groupBy(d.status);
    const out: Record<DeliveryStatus, number> = { pending: 0, delivering: 0, delivered: 0, dead: 0 };
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  private async views(where: SQL | undefined, limit: number): Promise<(DeliveryView & { seq: number })[]> {
    const rows = await this.db
      .select({ d, type: events.type })
      .from(d)
      .innerJoin(events, eq(events.id, d.eventId))
      .where(where)
      .orderBy(desc(d.seq))
      .limit(limit);
    return rows.map(({ d: r, type }) => ({
      id: r.id,
      seq: r.seq,
      eventId: r.eventId,
      eventType: type,
      targetKind: r.targetKind,
      target: r.target,
      handler: r.handler,
      status: r.status,
      attempts: r.attempts,
      maxAttempts: r.maxAttempts,
      nextAttemptAt: r.status === 'pending' ? r.nextAttemptAt.toISOString() : null,
      lastError: r.lastError,
      deliveredAt: r.deliveredAt?.toISOString() ?? null,
      createdAt: r.createdAt.toISOString(),
    }));
  }

  private async transition(
    id: string,
    leaseId: string,
    to: DeliveryStatus,
    patch: Partial<Record<keyof EventDeliveryRow, unknown>>,
  ): Promise<boolean> {
    const rows = await this.db
      .update(d)
      .set({ ...patch, status: to, leaseId: null, lockedUntil: null, updatedAt: now } as never)
      .where(
        and(
          eq(d.id, id),
          eq(d.leaseId, leaseId),
          inArray(d.status, sourcesOf(to)),
          eq(d.status, 'delivering'),
        ),
      )
      .returning({ id: d.id });
    return rows.length > 0;
  }
}
