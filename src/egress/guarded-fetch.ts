import { isIP } from 'node:net';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { EgressError } from '../errors.js';
import type { EgressPolicy, EgressRules } from './policy.js';

export interface GuardedFetchOptions {
  policy: EgressPolicy;
  rules: EgressRules;
  /** Largest response body, or for `text/event-stream` the largest single event, in bytes. */
  maxResponseBytes: number;
  /** TCP + TLS connect bound. */
  connectTimeoutMs: number;
  /** Bound on the wait for response headers. */
  headersTimeoutMs: number;
}

/** A fetch for one party's outbound traffic plus what it refused; `close()` drops its sockets. Idempotent. */
export interface GuardedFetch {
  fetch: FetchLike;
  /** The last egress refusal or size-cap error, to name it where a transport reports something vaguer. */
  readonly lastError: EgressError | undefined;
  /**
   * Registers a listener for an event stream (`text/event-stream`) cut at the size cap. It gets the error and
   * the JSON-RPC ids of the POST that opened the stream (empty: a GET stream, which may carry any response),
   * so the connection can fail exactly those requests at once: a transport sees only a broken stream.
   */
  onStreamCapped(listener: (err: EgressError, requestIds: readonly (string | number)[]) => void): void;
  close(): Promise<void>;
}

/** Response headers kept when a non-2xx body is withheld (what MCP clients act on). */
const KEPT_ON_ERROR = ['www-authenticate', 'mcp-session-id', 'retry-after', 'allow'];

/**
 * A fetch whose every connection (redirects included) goes to an address the policy checked: the host is
 * resolved once, checked, and the socket opened to exactly that address (TLS keeps the name for SNI and
 * certificate checks), so DNS rebinding cannot slip in. Bodies are capped (`maxResponseBytes`, clear
 * RESPONSE_TOO_LARGE error); a non-2xx body is replaced by `HTTP <status> (remote body withheld)` so a
 * remote server's text never reaches callers; headers that drive MCP auth/session handling are kept.
 */
export function createGuardedFetch(options: GuardedFetchOptions): GuardedFetch {
  let lastError: EgressError | undefined;
  const cappedListeners: ((err: EgressError, ids: readonly (string | number)[]) => void)[] = [];
  const note = (err: unknown): unknown => {
    if (err instanceof EgressError) lastError = err;
    return err;
  };
  const base = buildConnector({ timeout: options.connectTimeoutMs });
  const agent = new Agent({
    headersTimeout: options.headersTimeoutMs,
    // Streams (SSE) may idle for long; calls carry their own deadlines.
    bodyTimeout: 0,
    connections: 8,
    connect: (opts, callback) => {
      const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
      options.policy.resolve(opts.hostname, port, options.rules).then(
        (target) => {
          const name = opts.hostname.replace(/^\[(.*)\]$/, '$1');
          base(
            {
              ...opts,
              hostname: target.address,
              ...(opts.protocol === 'https:' && isIP(name) === 0 ? { servername: name } : {}),
            },
            callback,
          );
        },
        (err: unknown) => callback(note(err) as Error, null),
      );
    },
  });
  const guarded: FetchLike = async (url, init) => {
    let response: Response;
    try {
      response = (await undiciFetch(
        url as string | URL,
        { ...(init as object), dispatcher: agent } as Parameters<typeof undiciFetch>[1],
      )) as unknown as Response;
    } catch (err) {
      const cause = err instanceof Error ? err.cause : undefined;
      if (cause instanceof EgressError) throw cause;
      throw err;
    }
    if (!response.ok && response.status !== 304 && !(response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      const headers = new Headers({ 'content-type': 'text/plain' });
      for (const name of KEPT_ON_ERROR) {
        const v = response.headers.get(name);
        if (v !== null) headers.set(name, v);
      }
      return new Response(`HTTP ${response.status} (remote body withheld)`, {
        status: response.status,
        headers,
      });
    }
    const ids = requestIds(init?.body);
    return capBody(response, options.maxResponseBytes, note, (err) => {
      for (const listener of cappedListeners) listener(err, ids);
    });
  };
  let closed: Promise<void> | undefined;
  return {
    fetch: guarded,
    get lastError() {
      return lastError;
    },
    onStreamCapped(listener) {
      cappedListeners.push(listener);
    },
    close() {
      closed ??= agent.destroy().catch(() => undefined);
      return closed;
    },
  };
}

function tooLarge(max: number, what: string): EgressError {
  return new EgressError(
    'RESPONSE_TOO_LARGE',
    `The remote server sent ${what} larger than ${max} bytes (HAY_EGRESS_MAX_RESPONSE_BYTES); the response was cut off`,
    { maxBytes: max },
  );
}

/** JSON-RPC request ids in a POST body (one message or a batch); [] when there are none or it is not JSON. */
function requestIds(body: unknown): (string | number)[] {
  if (typeof body !== 'string' || body.length === 0) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  const out: (string | number)[] = [];
  for (const m of Array.isArray(parsed) ? (parsed as unknown[]) : [parsed]) {
    if (typeof m !== 'object' || m === null || !('method' in m) || !('id' in m)) continue;
    const id = (m as { id: unknown }).id;
    if (typeof id === 'string' || typeof id === 'number') out.push(id);
  }
  return out;
}

/**
 * The response with its body counted: total bytes, or bytes since the last blank line for event streams.
 * `onStreamCapped` runs when an event stream is cut (its reader sees only an errored stream).
 */
export function capBody(
  response: Response,
  max: number,
  note: (err: unknown) => unknown = (e) => e,
  onStreamCapped?: (err: EgressError) => void,
): Response {
  const body = response.body;
  if (!body) return response;
  const isStream = (response.headers.get('content-type') ?? '').includes('text/event-stream');
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (!isStream && Number.isFinite(declared) && declared > max) {
    void body.cancel().catch(() => undefined);
    throw note(tooLarge(max, 'a body'));
  }
  let count = 0;
  let prev = 0; // last two bytes seen, for a boundary split across chunks
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (chunk.length === 0) return;
      let start = 0;
      if (isStream) {
        for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
          const b1 = i >= 1 ? chunk[i - 1] : prev & 0xff;
          const b2 = i >= 2 ? chunk[i - 2] : i === 1 ? prev & 0xff : (prev >> 8) & 0xff;
          if (b1 !== 0x0a && !(b1 === 0x0d && b2 === 0x0a)) continue;
          if (count + (i + 1 - start) > max) break;
          count = 0;
          start = i + 1;
        }
        const n = chunk.length;
        prev =
          n >= 2
            ? ((chunk[n - 2] ?? 0) << 8) | (chunk[n - 1] ?? 0)
            : ((prev << 8) | (chunk[0] ?? 0)) & 0xffff;
      }
      count += chunk.length - start;
      if (count > max) {
        const err = tooLarge(max, isStream ? 'an event' : 'a body');
        controller.error(note(err));
        if (isStream) onStreamCapped?.(err);
        return;
      }
      controller.enqueue(chunk);
    },
  });
  return new Response(body.pipeThrough(counter), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
