import type { CallOptions } from '../ports.js';

/** The signal one outbound request runs under: the caller's signal combined with its own timeout. */
export interface CallScope {
  /** Fresh per request, so listeners the SDK adds to it die with the request (never accumulate). */
  signal: AbortSignal;
  timeoutMs: number;
  timedOut(): boolean;
  callerAborted(): boolean;
}

/**
 * Builds the per-request signal from `options` (timeoutMs defaults to `defaultTimeoutMs`). With
 * `deadlineOwned` it is the caller's own signal (no AbortSignal.timeout/any per request).
 */
export function callScope(options: CallOptions | undefined, defaultTimeoutMs: number): CallScope {
  const timeoutMs = options?.timeoutMs ?? defaultTimeoutMs;
  const owned = options?.deadlineOwned ? options.signal : undefined;
  if (owned)
    return {
      signal: owned,
      timeoutMs,
      // the owner aborts at its deadline with its own reason; to this scope that is the caller aborting
      timedOut: () => false,
      callerAborted: () => owned.aborted,
    };
  const timeout = AbortSignal.timeout(timeoutMs);
  const caller = options?.signal;
  return {
    signal: caller ? AbortSignal.any([caller, timeout]) : AbortSignal.any([timeout]),
    timeoutMs,
    timedOut: () => timeout.aborted && !(caller?.aborted ?? false),
    callerAborted: () => caller?.aborted ?? false,
  };
}

/** The reason a caller's signal was aborted with, as an Error (what fetch-style APIs throw). */
export function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return new DOMException(typeof reason === 'string' ? reason : 'The operation was aborted', 'AbortError');
}
