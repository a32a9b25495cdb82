import type { CallOutcome } from '../observability/metrics.js';

/**
 * One finished tool call, emitted once per `invokeTool` whose plugin was resolved. Listeners run
 * synchronously on the call path: they must only buffer (no I/O, no awaiting) and must not throw.
 */
export interface CallFinished {
  orgId: string;
  pluginId: string;
  /** The version that answered (or was about to): the spec's version. */
  version: string;
  /**
   * The tool the host matched (declared in the manifest or listed by the server); undefined when it matched
   * none: an unknown name, or a call refused before the lookup (rate limit, not ready). Never the caller's text.
   */
  tool: string | undefined;
  outcome: CallOutcome;
  /** HayError code of a failed call, if any (e.g. TOOL_NOT_FOUND). */
  errorCode: string | undefined;
  durationMs: number;
  /** Epoch ms when the call finished. */
  at: number;
}

export type CallFinishedListener = (e: CallFinished) => void;
