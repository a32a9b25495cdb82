/** Lifecycle of one 2025-era `/mcp` session (Mcp-Session-Id). Times are epoch milliseconds. */
export type SessionState =
  | { kind: 'initializing'; since: number }
  | { kind: 'open'; since: number }
  | { kind: 'closed'; reason: string };

export type SessionStateKind = SessionState['kind'];

/** Every allowed edge; anything else is a bug and throws. */
const ALLOWED: Readonly<Record<SessionStateKind, readonly SessionStateKind[]>> = {
  initializing: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

export function canTransition(from: SessionStateKind, to: SessionStateKind): boolean {
  return ALLOWED[from].includes(to);
}
