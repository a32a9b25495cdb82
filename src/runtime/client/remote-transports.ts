import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { LookupFunction } from 'node:net';
import { WsClientTransport } from './websocket-transport.js';

export type RemoteTransportKind = 'http' | 'sse' | 'websocket';

const REMOTE_KINDS: readonly string[] = ['http', 'sse', 'websocket'];

/**
 * The remote transports named by a manifest `transport` value (`http|sse` = try http, then sse), in order,
 * without duplicates; `stdio` and unknown names are skipped. Default: http.
 */
export function remoteTransportOrder(transport: string | undefined): RemoteTransportKind[] {
  const names = (transport ?? 'http').split('|').map((s) => s.trim());
  const out: RemoteTransportKind[] = [];
  for (const name of names) {
    if (REMOTE_KINDS.includes(name) && !out.includes(name as RemoteTransportKind))
      out.push(name as RemoteTransportKind);
  }
  return out;
}

/**
 * Wraps `base` so each request's signal is a fresh dependent of the one given. The SDK HTTP transports pass
 * one long-lived AbortController signal to every fetch, and undici keeps an abort listener per request on
 * it until garbage collection (dozens pile up on a busy connection); a dependent signal per request keeps
 * those listeners off the shared signal, while aborting the shared one still aborts every request.
 */
export function isolatingFetch(base: FetchLike = fetch): FetchLike {
  return (url, init) => base(url, init?.signal ? { ...init, signal: AbortSignal.any([init.signal]) } : init);
}

/** The URL with its scheme switched to what `kind` speaks (http(s) <-> ws(s)). */
export function urlFor(kind: RemoteTransportKind, raw: string): URL {
  const url = new URL(raw);
  if (kind === 'websocket') {
    if (url.protocol === 'http:') url.protocol = 'ws:';
    else if (url.protocol === 'https:') url.protocol = 'wss:';
  } else if (url.protocol === 'ws:') url.protocol = 'http:';
  else if (url.protocol === 'wss:') url.protocol = 'https:';
  return url;
}

/**
 * A not yet started client transport of `kind` to `url`, sending `headers` on every request/handshake.
 * `egress` (tenant-directed URLs): HTTP transports use its guarded fetch, WebSocket its checking lookup.
 */
export function createRemoteTransport(
  kind: RemoteTransportKind,
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  egress?: { fetch: FetchLike; webSocket: (url: URL) => { lookup: LookupFunction; maxPayloadBytes: number } },
): Transport {
  const target = urlFor(kind, url);
  const base = egress?.fetch;
  switch (kind) {
    case 'http':
      return new StreamableHTTPClientTransport(target, {
        requestInit: { headers },
        fetch: isolatingFetch(base),
      });
    case 'sse':
      return new SSEClientTransport(target, { requestInit: { headers }, fetch: isolatingFetch(base) });
    case 'websocket':
      return new WsClientTransport(target, { headers, signal, ...(egress ? egress.webSocket(target) : {}) });
  }
}
