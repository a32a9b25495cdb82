/** Lifecycle state of one (organization, plugin) instance. Times are epoch milliseconds. */
export type InstanceState =
  | { kind: 'stopped' }
  | { kind: 'starting'; since: number }
  | { kind: 'running'; since: number }
  | { kind: 'stopping'; since: number; reason: string }
  | {
      kind: 'failed';
      /** What went wrong, written for a person. */
      reason: string;
      /** Consecutive failures (crashes or failed starts) including this one. */
      failures: number;
      /** No start is attempted before this time. */
      retryAfter: number;
    };

export type InstanceStateKind = InstanceState['kind'];

/** Every allowed edge; anything else is a bug and throws. */
const ALLOWED: Readonly<Record<InstanceStateKind, readonly InstanceStateKind[]>> = {
  stopped: ['starting'],
  starting: ['running', 'failed', 'stopped'],
  running: ['stopping', 'failed'],
  stopping: ['stopped'],
  failed: ['starting', 'stopped'],
};

export function canTransition(from: InstanceStateKind, to: InstanceStateKind): boolean {
  return ALLOWED[from].includes(to);
}

/** States that occupy a slot of the plugin's pool (`maxConcurrentInstances`). */
export function holdsSlot(kind: InstanceStateKind): boolean {
  return kind === 'starting' || kind === 'running';
}

/**
 * Delay before start attempt number `failures + 1`. The first failure restarts at once (a single crash must
 * not fail the next call); repeated failures back off: base * 2^(failures-2), capped at max.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 1) return 0;
  const exp = Math.min(failures - 2, 30);
  return Math.min(baseMs * 2 ** exp, maxMs);
}
