import type { ConnectorConfig } from './config.js';

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
  const response = await fetch(request.url, {
    method: request.method,
    headers,
    body: payload,
    redirect: 'manual',
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  const text = await response.text();
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
