/**
 * Per-process budget of logged stderr lines: a token bucket of `linesPerMinute` (burst the same). A line
 * over budget is dropped and counted; the count is reported through `report` before the next logged line,
 * at most every `reportEveryMs` while dropping, and by `flush()` (stream end). No timers.
 */
export class StderrBudget {
  readonly #rate: number;
  readonly #burst: number;
  readonly #reportEveryMs: number;
  readonly #report: (dropped: number) => void;
  readonly #now: () => number;
  #tokens: number;
  #at: number;
  #pending = 0;
  #lastReport: number;

  constructor(o: {
    linesPerMinute: number;
    report: (dropped: number) => void;
    reportEveryMs?: number;
    now?: () => number;
  }) {
    this.#rate = o.linesPerMinute / 60_000;
    this.#burst = o.linesPerMinute;
    this.#reportEveryMs = o.reportEveryMs ?? 10_000;
    this.#report = o.report;
    this.#now = o.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#at = this.#now();
    this.#lastReport = this.#at;
  }

  /** True when the line may be logged; false when it is dropped (and counted). */
  take(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      this.flush();
      return true;
    }
    this.#pending++;
    if (now - this.#lastReport >= this.#reportEveryMs) this.flush();
    return false;
  }

  /** Reports lines dropped since the last report, if any. */
  flush(): void {
    if (this.#pending === 0) return;
    const n = this.#pending;
    this.#pending = 0;
    this.#lastReport = this.#now();
    this.#report(n);
  }
}
