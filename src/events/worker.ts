import type { AuditLog } from '../audit/audit-log.js';
import { isHayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { afterFailure } from './delivery-state.js';
import type { EventsMetrics } from './metrics.js';
import type { Claimed, OutboxStore } from './outbox.js';

/** A failed attempt. `permanent`: retrying cannot help (dead-lettered at once). */
export class DeliveryFailure extends Error {
  readonly permanent: boolean;
  constructor(message: string, options: { permanent?: boolean; cause?: unknown } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.permanent = options.permanent ?? false;
  }
}

/**
 * Performs one attempt. Resolves when the target accepted it; throws (a DeliveryFailure or anything)
 * when not. Must stop when `signal` aborts.
 */
export type Deliverer = (claimed: Claimed, signal: AbortSignal) => Promise<void>;

export interface OutboxWorkerOptions {
  pollIntervalMs: number;
  leaseMs: number;
  timeoutMs: number;
  concurrency: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** On close, in-flight attempts get this long to finish before they are aborted and released. */
  drainMs: number;
}

/**
 * Runs due outbox deliveries: claims up to `concurrency` rows at a time (on every poll tick and on
 * `kick()`), runs each with a timeout, and records the outcome through the store. A row claimed here is
 * either finished or, when the host stops, released; after a crash its lease expires and any node
 * claims it again. `start()` and `close()` are idempotent; close leaves no timer behind.
 */
export class OutboxWorker {
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private pumping: Promise<void> | undefined;
  private again = false;
  private running = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly d: {
      store: OutboxStore;
      deliverers: Record<'plugin' | 'webhook', Deliverer>;
      logger: Logger;
      metrics: EventsMetrics;
      audit: AuditLog;
      options: OutboxWorkerOptions;
    },
  ) {}

  start(): void {
    if (this.running || this.closing) return;
    this.running = true;
    this.timer = setInterval(() => this.kick(), this.d.options.pollIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Looks for due deliveries now (coalesced with a run in progress). */
  kick(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** Attempts running on this node now. */
  get inFlight(): number {
    return this.inflight.size;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.running = false;
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      await this.pumping?.catch(() => undefined);
      const all = [...this.inflight.values()];
      if (all.length > 0) {
        const drained = await Promise.race([
          Promise.all(all.map((x) => x.done)).then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), this.d.options.drainMs).unref()),
        ]);
        if (!drained) for (const x of this.inflight.values()) x.controller.abort(new Error('host stopping'));
        await Promise.all([...this.inflight.values()].map((x) => x.done));
      }
    })();
    return this.closing;
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const room = this.d.options.concurrency - this.inflight.size;
        if (!this.running || room <= 0) return;
        const { leaseId, claimed } = await this.d.store.claim(room, this.d.options.leaseMs);
        for (const c of claimed) this.run(c, leaseId);
        if (claimed.length < room) return;
      }
    } catch (err) {
      this.d.logger.error({ err }, 'outbox claim failed; retrying on the next tick');
    }
  }

  private run(c: Claimed, leaseId: string): void {
    const controller = new AbortController();
    const done = this.attempt(c, leaseId, controller).finally(() => {
      this.inflight.delete(c.delivery.id);
      this.kick();
    });
    this.inflight.set(c.delivery.id, { controller, done });
  }

  private async attempt(c: Claimed, leaseId: string, controller: AbortController): Promise<void> {
    const { delivery, event } = c;
    const log = this.d.logger.child({
      orgId: delivery.organizationId,
      deliveryId: delivery.id,
      eventId: event.id,
      target: `${delivery.targetKind}:${delivery.target}`,
      attempt: delivery.attempts,
    });
    const timeout = AbortSignal.timeout(this.d.options.timeoutMs);
    const signal = AbortSignal.any([controller.signal, timeout]);
    const kind = delivery.targetKind;
    try {
      await this.d.deliverers[kind](c, signal);
      if (!(await this.d.store.markDelivered(delivery.id, leaseId))) {
        log.warn('delivered, but the lease had expired: another attempt may repeat it');
        return;
      }
      this.d.metrics.delivered(kind, (Date.now() - event.createdAt.getTime()) / 1000);
      this.d.audit.record({
        organizationId: delivery.organizationId,
        actor: 'system:events',
        action: 'event.deliver',
        pluginId: kind === 'plugin' ? delivery.target : null,
        outcome: 'ok',
        details: {
          deliveryId: delivery.id,
          eventId: event.id,
          type: event.type,
          target: delivery.target,
          attempts: delivery.attempts,
        },
      });
    } catch (err) {
      if (controller.signal.aborted && !timeout.aborted) {
        await this.d.store.release(delivery.id, leaseId).catch(() => false);
        log.info('attempt interrupted by shutdown; released for retry');
        return;
      }
      const message = timeout.aborted
        ? `no answer within ${this.d.options.timeoutMs} ms`
        : failureMessage(err);
      const next = afterFailure(delivery.attempts, {
        maxAttempts: delivery.maxAttempts,
        baseMs: this.d.options.backoffBaseMs,
        maxMs: this.d.options.backoffMaxMs,
        permanent: err instanceof DeliveryFailure && err.permanent,
      });
      try {
        if (next.kind === 'dead') {
          if (!(await this.d.store.markDead(delivery.id, leaseId, message))) return;
          this.d.metrics.dead(kind);
          log.warn({ error: message }, 'delivery dead-lettered');
          this.d.audit.record({
            organizationId: delivery.organizationId,
            actor: 'system:events',
            action: 'event.dead',
            pluginId: kind === 'plugin' ? delivery.target : null,
            outcome: 'error',
            details: {
              deliveryId: delivery.id,
              eventId: event.id,
              type: event.type,
              target: delivery.target,
              attempts: delivery.attempts,
              error: message,
            },
          });
        } else {
          if (!(await this.d.store.markRetry(delivery.id, leaseId, next.delayMs, message))) return;
          this.d.metrics.retried(kind);
          log.info({ error: message, retryInMs: next.delayMs }, 'delivery failed; will retry');
        }
      } catch (storeErr) {
        log.error({ err: storeErr }, 'could not record the attempt; the lease expiry retries it');
      }
    }
  }
}

/** The error as stored and shown to the org: a HayError's message, else the error's message, bounded. */
function failureMessage(err: unknown): string {
  const text =
    isHayError(err) || err instanceof DeliveryFailure
      ? err.message
      : err instanceof Error
        ? err.message
        : String(err);
  return text.slice(0, 1000);
}
