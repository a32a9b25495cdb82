/**
 * Runs `run` with its own AbortSignal and settles first of: its result, `timeoutMs` (rejects with
 * `timeoutError()` and aborts run's signal), or the caller's `signal` (rejects with its reason). A result
 * that arrives after the deadline is handed to `onLate` (e.g. to close a connection nobody will use).
 * The timer is unref'd and always cleared.
 */
export function withDeadline<T>(
  run: (signal: AbortSignal) => Promise<T>,
  options: {
    timeoutMs: number;
    signal?: AbortSignal | undefined;
    timeoutError: () => Error;
    onLate?: (value: T) => void;
  },
): Promise<T> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = () => {
      if (!finish()) return;
      reject(signal?.reason);
      controller.abort(signal?.reason);
    };
    const timer = setTimeout(() => {
      if (!finish()) return;
      const err = options.timeoutError();
      reject(err);
      controller.abort(err);
    }, options.timeoutMs);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    let pending: Promise<T>;
    try {
      pending = run(controller.signal);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (value) => {
        if (finish()) resolve(value);
        else options.onLate?.(value);
      },
      (err: unknown) => {
        if (finish()) reject(err);
      },
    );
  });
}

/** Settles with `promise`, or rejects with the signal's reason when it aborts first. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Resolves after `ms` (unref'd timer), or rejects with the reason of the first of `signals` to abort.
 * The timer and listeners are always cleared.
 */
export function sleep(ms: number, signals: readonly (AbortSignal | undefined)[]): Promise<void> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const aborted = live.find((s) => s.aborted);
  if (aborted) return Promise.reject(aborted.reason);
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener('abort', onAbort);
    };
    const onAbort = (event: Event) => {
      cleanup();
      reject((event.target as AbortSignal).reason);
    };
    const timer = setTimeout(() => {
      cleanup();
      resolve();
    }, ms);
    timer.unref();
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
  });
}
