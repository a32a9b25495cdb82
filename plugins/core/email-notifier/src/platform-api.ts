/** Where and how to reach the Hay platform API; injected by the host as HAY_API_URL / HAY_API_TOKEN. */
export interface PlatformApi {
  baseUrl: URL;
  token: string;
  timeoutMs: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** Reads the platform API settings; throws an Error naming what is missing. */
export function readPlatformApi(env: NodeJS.ProcessEnv): PlatformApi {
  const rawUrl = env.HAY_API_URL?.trim() ?? '';
  const token = env.HAY_API_TOKEN ?? '';
  if (rawUrl === '' || token === '') {
    throw new Error(
      'HAY_API_URL and HAY_API_TOKEN must be set by the host; is "email" listed in permissions.api in manifest.json?',
    );
  }
  let baseUrl: URL;
  try {
    baseUrl = new URL(rawUrl);
  } catch {
    throw new Error(`HAY_API_URL ${JSON.stringify(rawUrl)} is not a valid URL`);
  }
  return { baseUrl, token, timeoutMs: DEFAULT_TIMEOUT_MS };
}

export type ApiOutcome =
  { ok: true; status: number; body: unknown } | { ok: false; status: number; message: string };

/**
 * POSTs JSON to `${HAY_API_URL}${path}` with the platform token. Never throws for HTTP errors: a non-2xx
 * reply becomes `{ ok: false, message }` with the API's own error message when it sent one. Network
 * failures and timeouts (after `timeoutMs`, or when `signal` fires) do throw.
 */
export async function postJson(
  api: PlatformApi,
  path: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<ApiOutcome> {
  const url = new URL(api.baseUrl.href.replace(/\/+$/, '') + path);
  const timeout = AbortSignal.timeout(api.timeoutMs);
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${api.token}`,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: JSON.stringify(body),
    redirect: 'error',
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (response.ok) return { ok: true, status: response.status, body: parsed ?? {} };
  return {
    ok: false,
    status: response.status,
    message: errorMessage(parsed) ?? (text.trim() || response.statusText),
  };
}

/** Finds a human message in the common error shapes: {error:{message}}, {message}, {error:"..."}. */
function errorMessage(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const record = body as Record<string, unknown>;
  const nested = record.error;
  if (typeof nested === 'object' && nested !== null) {
    const inner = (nested as Record<string, unknown>).message;
    if (typeof inner === 'string') return inner;
  }
  if (typeof record.message === 'string') return record.message;
  if (typeof nested === 'string') return nested;
  return undefined;
}
