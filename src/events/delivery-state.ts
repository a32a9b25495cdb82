/** State of one outbox delivery (one event to one target). Times are epoch milliseconds. */
export type DeliveryState =
  | {
      kind: 'pending';
      /** Attempts made so far (0 for a new or replayed delivery). */
      attempts: number;
      /** Not claimed before this time. */
      nextAttemptAt: number;
      /** Why the previous attempt failed, if one did. */
      lastError: string | null;
    }
  | {
      kind: 'delivering';
      /** Including the attempt in progress. */
      attempts: number;
      /** The holder's lease: after this time another worker (or the restarted host) may claim it. */
      lockedUntil: number;
      leaseId: string;
    }
  | { kind: 'delivered'; attempts: number; deliveredAt: number }
  | {
      kind: 'dead';
      attempts: number;
      /** The error of the last attempt, written for a person. */
      lastError: string;
    };

export type DeliveryStatus = DeliveryState['kind'];

/**
 * Every allowed edge; anything else is a bug and throws. `delivering -> delivering` is a claim of a row
 * whose lease expired (its holder died or stalled); `dead -> pending` is a replay.
 */
const ALLOWED: Readonly<Record<DeliveryStatus, readonly DeliveryStatus[]>> = {
  pending: ['delivering'],
  delivering: ['delivered', 'pending', 'dead', 'delivering'],
  delivered: [],
  dead: ['pending'],
};

export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivering', 'delivered', 'dead'];

export function canTransition(from: DeliveryStatus, to: DeliveryStatus): boolean {
  return ALLOWED[from].includes(to);
}

/** Throws unless `from -> to` is an edge of the table. */
export function assertTransition(from: DeliveryStatus, to: DeliveryStatus): void {
  if (!canTransition(from, to)) throw new Error(`delivery state: ${from} -> ${to} is not allowed`);
}

/** Statuses from which `to` can be reached: the SQL guards of each transition come from here. */
export function sourcesOf(to: DeliveryStatus): DeliveryStatus[] {
  return DELIVERY_STATUSES.filter((s) => canTransition(s, to));
}

/**
 * What happens after attempt number `attempts` failed: dead once `attempts >= maxAttempts` (or the error is
 * permanent), else pending again after an exponential backoff `base * 2^(attempts-1)` capped at `maxMs`,
 * with jitter: a uniformly random delay in [delay/2, delay].
 */
export function afterFailure(
  attempts: number,
  options: { maxAttempts: number; baseMs: number; maxMs: number; permanent: boolean; random?: () => number },
): { kind: 'dead' } | { kind: 'pending'; delayMs: number } {
  if (options.permanent || attempts >= options.maxAttempts) return { kind: 'dead' };
  const exp = Math.min(Math.max(attempts - 1, 0), 30);
  const delay = Math.min(options.baseMs * 2 ** exp, options.maxMs);
  const r = (options.random ?? Math.random)();
  return { kind: 'pending', delayMs: Math.round(delay / 2 + (delay / 2) * r) };
}
