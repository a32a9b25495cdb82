import type { Logger } from '../../logger.js';
import type { ActivityStore } from '../ports.js';

interface Entry {
  orgId: string;
  pluginKey: string;
  at: number;
}

/**
 * Last-activity timestamps kept in memory and written to the ActivityStore in one batch per flush:
 * every `intervalMs` after start() (unref'd timer) and on close(). A failed write keeps the entries for the
 * next flush unless newer ones replaced them. Flushes never overlap.
 */
export class ActivityBuffer {
  private readonly dirty = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly store: ActivityStore,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Records activity in memory only. */
  touch(orgId: string, pluginKey: string, at: number): void {
    const key = `${orgId}\u0000${pluginKey}`;
    const prev = this.dirty.get(key);
    if (!prev || prev.at < at) this.dirty.set(key, { orgId, pluginKey, at });
  }

  pending(): number {
    return this.dirty.size;
  }

  /** Writes all dirty entries in one recordActivity call; resolves when written (or logged as failed). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.dirty.size === 0) return;
    const batch = [...this.dirty.entries()];
    this.dirty.clear();
    this.flushing = this.store
      .recordActivity(batch.map(([, e]) => ({ orgId: e.orgId, pluginKey: e.pluginKey, at: new Date(e.at) })))
      .catch((err: unknown) => {
        this.logger.warn({ err, entries: batch.length }, 'writing plugin activity failed; will retry');
        for (const [key, e] of batch) {
          const newer = this.dirty.get(key);
          if (!newer || newer.at < e.at) this.dirty.set(key, e);
        }
      })
      .finally(() => {
        this.flushing = undefined;
      });
    await this.flushing;
  }

  /** Stops the timer and flushes what is left. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
