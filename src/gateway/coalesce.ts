/** Windows kept at once before the expired ones are dropped (keys are bounded by the caller anyway). */
const PRUNE_AT = 1_024;

interface Window {
  until: number;
  trailing: NodeJS.Timeout | undefined;
}

/**
 * A per-key rate bound on notifications: the first `push(key)` sends at once; later ones within
 * `windowMs` of the last send become ONE send at the window's end, however many arrive. Timers are
 * unref'd; close() cancels the pending ones and sends nothing more.
 */
export class KeyedCoalescer {
  private readonly windows = new Map<string, Window>();
  private closed = false;

  constructor(
    private readonly windowMs: number,
    private readonly send: (key: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  push(key: string): void {
    if (this.closed) return;
    const now = this.now();
    const w = this.windows.get(key);
    if (!w || (now >= w.until && w.trailing === undefined)) {
      if (!w && this.windows.size >= PRUNE_AT) this.prune(now);
      this.windows.set(key, { until: now + this.windowMs, trailing: undefined });
      this.send(key);
      return;
    }
    if (w.trailing !== undefined) return;
    w.trailing = setTimeout(
      () => {
        w.trailing = undefined;
        if (this.closed) return;
        w.until = this.now() + this.windowMs;
        this.send(key);
      },
      Math.max(0, w.until - now),
    );
    w.trailing.unref();
  }

  /** Timers pending (for tests). */
  get pending(): number {
    let n = 0;
    for (const w of this.windows.values()) if (w.trailing !== undefined) n++;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const w of this.windows.values()) clearTimeout(w.trailing);
    this.windows.clear();
  }

  private prune(now: number): void {
    for (const [key, w] of this.windows)
      if (w.trailing === undefined && now >= w.until) this.windows.delete(key);
  }
}
