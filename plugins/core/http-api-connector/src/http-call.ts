import { EnvHttpProxyAgent, fetch as proxiedFetch, type Dispatcher } from 'undici';
import type { ConnectorConfig } from './config.js';

/** Largest response body read; a longer one is a tool error (the host never sees it). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

let dispatcher: Dispatcher | undefined;

/**
 * The host routes this plugin's traffic through its egress proxy (HTTP_PROXY/HTTPS_PROXY), which refuses
 * private, loopback, link-local and metadata addresses unless the operator allows them. Node 20's fetch
 * ignores those variables, so requests go through undici's EnvHttpProxyAgent; without them, direct.
 */
function proxyDispatcher(): Dispatcher | undefined {
  if (!process.env.HTTP_PROXY && !process.env.HTTPS_PROXY) return undefined;
  dispatcher ??= new EnvHttpProxyAgent();
  return dispatcher;
}

/** Reads at most `max` bytes of the body; throws an Error naming the cap when it is longer. */
async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`the response body exceeds ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface HttpOutcome {
  status: number;
  ok: boolean;
  /** Parsed JSON when the response says it is JSON and parses; the raw text otherwise. */
  body: unknown;
}

/**
 * Resolves `path` against the configured base URL. The result always stays on the base URL's origin and
 * under its path: absolute URLs and `//host` paths are refused.
 */
export function resolveUrl(base: URL, path: string, query?: Record<string, string>): URL {
  if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('//')) {
    throw new Error(`path must be relative to baseUrl (got ${JSON.stringify(path)})`);
  }
  const prefix = base.href.replace(/[?#].*$/, '').replace(/\/+$/, '');
  const url = new URL(prefix + (path.startsWith('/') ? path : `/${path}`));
  if (url.origin !== base.origin) throw new Error(`path ${JSON.stringify(path)} leaves ${base.origin}`);
  for (const [key, value] of Object.entries(query ?? {})) url.searchParams.append(key, value);
  return url;
}

/** One request with the bearer key; aborts after `config.timeoutMs` or when `signal` fires. */
export async function callApi(
  config: ConnectorConfig,
  request: { method: 'GET' | 'POST'; url: URL; body?: unknown },
  signal?: AbortSignal,
): Promise<HttpOutcome> {
  const timeout = AbortSignal.timeout(config.timeoutMs);
  const headers: Record<string, string> = {
    authorization: `Bearer ${config.apiKey}`,
    accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
  };
  let payload: string | undefined;
  if (request.method === 'POST') {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(request.body ?? null);
  }
  const via = proxyDispatcher();
  const response = await proxiedFetch(request.url, {
    method: request.method,
    headers,
    body: payload,
    redirect: 'manual',
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    ...(via ? { dispatcher: via } : {}),
  });
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`the response body exceeds ${MAX_RESPONSE_BYTES} bytes`);
  }
  const text = await readCapped(response.body as ReadableStream<Uint8Array> | null, MAX_RESPONSE_BYTES);
  let body: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json') && text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: response.status, ok: response.ok, body };
}
