import { CapacityError } from '../../errors.js';

interface Waiter {
  holder: string;
  enqueuedAt: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

interface PluginSlots {
  limit: number;
  holders: Set<string>;
  waiters: Waiter[];
}

export interface AcquireOptions {
  /** Plugin id used in the capacity error message. */
  pluginId: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Slots per plugin key: at most `limit` holders at once, the rest wait in FIFO order. A holder is an
 * opaque string (the instance key). `release` hands the slot to the oldest waiter synchronously.
 */
export class SlotPool {
  private readonly plugins = new Map<string, PluginSlots>();

  constructor(private readonly now: () => number) {}

  /** Takes a slot now if one is free and nobody is queued ahead; never waits. */
  tryAcquire(pluginKey: string, holder: string, limit: number): boolean {
    const slots = this.slotsFor(pluginKey, limit);
    if (slots.holders.has(holder)) return true;
    if (slots.waiters.length > 0 || slots.holders.size >= slots.limit) return false;
    slots.holders.add(holder);
    return true;
  }

  /**
   * Waits in the plugin's FIFO queue for a slot. Rejects with CapacityError after `timeoutMs`, or with the
   * signal's reason when aborted (the waiter leaves the queue either way).
   */
  acquire(pluginKey: string, holder: string, limit: number, options: AcquireOptions): Promise<void> {
    if (this.tryAcquire(pluginKey, holder, limit)) return Promise.resolve();
    const slots = this.slotsFor(pluginKey, limit);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const enqueuedAt = this.now();
      const timer = setTimeout(() => {
        remove();
        const waitedMs = this.now() - enqueuedAt;
        reject(
          new CapacityError(
            `Plugin ${options.pluginId} is at its limit of ${slots.limit} concurrent instance(s) and no slot freed ` +
              `up within ${waitedMs} ms. Retry later, or raise maxConcurrentInstances for this plugin.`,
            { pluginKey, limit: slots.limit, waitedMs },
          ),
        );
      }, options.timeoutMs);
      timer.unref();
      const onAbort = () => {
        remove();
        reject(signal?.reason);
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = { holder, enqueuedAt, resolve, reject, cleanup };
      const remove = () => {
        cleanup();
        const i = slots.waiters.indexOf(waiter);
        if (i >= 0) slots.waiters.splice(i, 1);
        this.forgetIfEmpty(pluginKey, slots);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      slots.waiters.push(waiter);
    });
  }

  /** Frees the holder's slot (no-op if it holds none) and serves waiters in order. */
  release(pluginKey: string, holder: string): void {
    const slots = this.plugins.get(pluginKey);
    if (!slots || !slots.holders.delete(holder)) return;
    this.serve(slots);
    this.forgetIfEmpty(pluginKey, slots);
  }

  holders(pluginKey: string): number {
    return this.plugins.get(pluginKey)?.holders.size ?? 0;
  }

  /** Queued waiters for one plugin, or for all plugins. */
  waiting(pluginKey?: string): number {
    if (pluginKey !== undefined) return this.plugins.get(pluginKey)?.waiters.length ?? 0;
    let n = 0;
    for (const s of this.plugins.values()) n += s.waiters.length;
    return n;
  }

  /** Rejects every waiter with `err` (shutdown). Holders are untouched. */
  rejectAll(err: unknown): void {
    for (const [key, slots] of this.plugins) {
      const waiters = slots.waiters.splice(0);
      for (const w of waiters) {
        w.cleanup();
        w.reject(err);
      }
      this.forgetIfEmpty(key, slots);
    }
  }

  private slotsFor(pluginKey: string, limit: number): PluginSlots {
    let slots = this.plugins.get(pluginKey);
    if (!slots) {
      slots = { limit: Math.max(1, limit), holders: new Set(), waiters: [] };
      this.plugins.set(pluginKey, slots);
    } else if (slots.limit !== limit) {
      slots.limit = Math.max(1, limit);
      this.serve(slots);
    }
    return slots;
  }

  private serve(slots: PluginSlots): void {
    while (slots.holders.size < slots.limit) {
      const next = slots.waiters.shift();
      if (!next) break;
      next.cleanup();
      slots.holders.add(next.holder);
      next.resolve();
    }
  }

  private forgetIfEmpty(pluginKey: string, slots: PluginSlots): void {
    if (slots.holders.size === 0 && slots.waiters.length === 0) this.plugins.delete(pluginKey);
  }
}
