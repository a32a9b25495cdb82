import { randomBytes } from 'node:crypto';
import type { InputRequiredResult } from '@modelcontextprotocol/server';
import type { Caller } from '../invocation/plugin-service.js';
import type { PluginLogMessage, PluginServerRequest, ServerRequestRelay } from '../runtime/ports.js';

export interface InputRoundsLimits {
  /** Calls waiting for their client's input, per organization; a further plugin request is refused. */
  maxWaitingPerOrg: number;
  /** A call whose client does not come back with the input within this long is cancelled. */
  roundTimeoutMs: number;
  /** Requests one call may have waiting for its client at once; a further one is refused. Default 32. */
  maxPendingPerCall?: number;
}

const MAX_PENDING_PER_CALL = 32;

/** What the current round (one tools/call request of the client) offers the call. */
export interface RoundTarget {
  signal: AbortSignal;
  /** Why the client cannot answer `request` (it did not declare the capability), or undefined. */
  refuses(request: PluginServerRequest): string | undefined;
  onProgress?: (p: { progress: number; total?: number; message?: string }) => void;
  onLog?: (message: PluginLogMessage) => void;
}

/** How a round ends: the call's outcome, or the input the client must supply before retrying. */
export type RoundOutcome<T> =
  | { kind: 'done'; value: T }
  | { kind: 'failed'; error: unknown }
  | { kind: 'input'; result: InputRequiredResult };

interface Pending {
  request: PluginServerRequest;
  resolve(value: unknown): void;
  reject(err: Error): void;
  sent: boolean;
}

interface RoundCall<T> {
  /** The requestState: drawn when the call first waits for input (most calls never do). */
  id: string | undefined;
  orgId: string;
  keyId: string;
  controller: AbortController;
  outcome: { settled: false } | { settled: true; outcome: RoundOutcome<T> };
  pending: Map<string, Pending>;
  nextKey: number;
  target: RoundTarget | undefined;
  wake: (() => void) | undefined;
  expiry: NodeJS.Timeout | undefined;
}

/**
 * Server-to-client requests of plugin calls made through /mcp, as multi round-trip results: a call
 * runs; when its plugin asks for sampling, elicitation or roots, the round answers `input_required`
 * (the request embedded, `requestState` = this call's id) and the call keeps running, waiting; the
 * client's retry carries the responses, which go to the plugin, and the next round waits for the
 * result or the next request. A 2026-07-28 client does the rounds itself; for a 2025-11-25 session the
 * SDK's legacy shim turns each round into real server-to-client requests, so one code path serves both.
 *
 * A request the client did not declare the capability for is refused to the plugin at once with an
 * error naming it. `requestState` is 128 random bits bound to the organization and API key that began
 * the call: any other key, an unknown or an expired id gets -32602. Calls waiting for input are bounded
 * per organization, the requests waiting per call (maxPendingPerCall), and a call is cancelled (its
 * plugin request aborted) after roundTimeoutMs without a retry.
 * Calls live in this node's memory: a retry must reach the same host node.
 */
export class InputRounds {
  private readonly calls = new Map<string, RoundCall<unknown>>();
  private closed = false;

  private readonly maxPendingPerCall: number;

  constructor(private readonly limits: InputRoundsLimits) {
    this.maxPendingPerCall = limits.maxPendingPerCall ?? MAX_PENDING_PER_CALL;
  }

  /** Calls now waiting for their client's input. */
  waiting(orgId?: string): number {
    let n = 0;
    for (const c of this.calls.values()) if (orgId === undefined || c.orgId === orgId) n++;
    return n;
  }

  /** Starts `run` (the plugin call) and plays its first round against `target`. */
  begin<T>(
    caller: Caller,
    target: RoundTarget,
    run: (hooks: {
      signal: AbortSignal;
      onServerRequest: ServerRequestRelay;
      onProgress: NonNullable<RoundTarget['onProgress']>;
      onLog: NonNullable<RoundTarget['onLog']>;
    }) => Promise<T>,
  ): Promise<RoundOutcome<T>> {
    const call: RoundCall<T> = {
      id: undefined,
      orgId: caller.organizationId,
      keyId: caller.keyId,
      controller: new AbortController(),
      outcome: { settled: false },
      pending: new Map(),
      nextKey: 1,
      target: undefined,
      wake: undefined,
      expiry: undefined,
    };
    const onServerRequest: ServerRequestRelay = (request, signal) =>
      new Promise((resolve, reject) => {
        const refusal =
          call.target?.refuses(request) ??
          (this.closed ? 'the host is shutting down' : undefined) ??
          (call.pending.size >= this.maxPendingPerCall
            ? `too many requests of this call wait for client input (limit ${this.maxPendingPerCall})`
            : undefined) ??
          (this.waiting(call.orgId) >= this.limits.maxWaitingPerOrg
            ? `too many calls of this organization wait for client input (limit ${this.limits.maxWaitingPerOrg})`
            : undefined);
        if (refusal) {
          reject(new Error(refusal));
          return;
        }
        const key = `r${call.nextKey++}`;
        const entry: Pending = { request, resolve, reject, sent: false };
        call.pending.set(key, entry);
        signal.addEventListener('abort', () => {
          if (call.pending.delete(key)) reject(new Error('the plugin cancelled its request'));
        });
        call.wake?.();
      });
    const settle = (outcome: RoundOutcome<T>) => {
      call.outcome = { settled: true, outcome };
      for (const p of call.pending.values()) p.reject(new Error('the call ended'));
      call.pending.clear();
      call.wake?.();
    };
    run({
      signal: call.controller.signal,
      onServerRequest,
      onProgress: (p) => call.target?.onProgress?.(p),
      onLog: (m) => call.target?.onLog?.(m),
    }).then(
      (value) => settle({ kind: 'done', value }),
      (error: unknown) => settle({ kind: 'failed', error }),
    );
    return this.round(call, target);
  }

  /**
   * A client's retry: hands `responses` (keyed as the previous round's inputRequests) to the plugin and
   * plays the next round. Undefined when `state` names no call of this caller (unknown, expired, ended,
   * or another key's).
   */
  resume(
    caller: Caller,
    state: string,
    responses: Record<string, unknown> | undefined,
    target: RoundTarget,
  ): Promise<RoundOutcome<unknown>> | undefined {
    const call = this.calls.get(state);
    if (!call || call.orgId !== caller.organizationId || call.keyId !== caller.keyId) return undefined;
    clearTimeout(call.expiry);
    call.expiry = undefined;
    for (const [key, value] of Object.entries(responses ?? {})) {
      const p = call.pending.get(key);
      if (!p?.sent) continue;
      call.pending.delete(key);
      p.resolve(value);
    }
    // a request the client left unanswered is asked again
    for (const p of call.pending.values()) p.sent = false;
    return this.round(call, target);
  }

  /** Cancels every waiting call. Idempotent. */
  close(): void {
    this.closed = true;
    for (const c of this.calls.values()) {
      clearTimeout(c.expiry);
      c.controller.abort(new Error('the host is shutting down'));
    }
    this.calls.clear();
  }

  private async round<T>(call: RoundCall<T>, target: RoundTarget): Promise<RoundOutcome<T>> {
    if (call.id !== undefined) this.calls.delete(call.id);
    call.target = target;
    const onAbort = () => call.controller.abort(target.signal.reason);
    if (target.signal.aborted) onAbort();
    target.signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (call.outcome.settled) return call.outcome.outcome;
        const unsent = [...call.pending.entries()].filter(([, p]) => !p.sent);
        if (unsent.length > 0) {
          const inputRequests: Record<string, PluginServerRequest> = {};
          for (const [key, p] of unsent) {
            const refusal = target.refuses(p.request);
            if (refusal) {
              call.pending.delete(key);
              p.reject(new Error(refusal));
              continue;
            }
            p.sent = true;
            inputRequests[key] = p.request;
          }
          if (Object.keys(inputRequests).length > 0) {
            const requestState = this.wait(call);
            return {
              kind: 'input',
              result: {
                resultType: 'input_required',
                inputRequests: inputRequests as InputRequiredResult['inputRequests'],
                requestState,
              },
            };
          }
          continue;
        }
        await new Promise<void>((resolve) => {
          call.wake = resolve;
        });
        call.wake = undefined;
      }
    } finally {
      target.signal.removeEventListener('abort', onAbort);
      if (call.target === target) call.target = undefined;
    }
  }

  /** Parks the call until its client retries, bounded by roundTimeoutMs. */
  private wait<T>(call: RoundCall<T>): string {
    const id = (call.id ??= randomBytes(16).toString('base64url'));
    this.calls.set(id, call as RoundCall<unknown>);
    call.expiry = setTimeout(() => {
      if (this.calls.get(id) !== call) return;
      this.calls.delete(id);
      call.controller.abort(new Error('the client did not answer the input request in time'));
    }, this.limits.roundTimeoutMs);
    call.expiry.unref();
    return id;
  }
}
