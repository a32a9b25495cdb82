import { createTRPCClient, httpLink, TRPCClientError, type TRPCClient } from '@trpc/client';
import type { inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from '../../src/api/router.js';
import type { SessionInfo } from '../../src/web-session/service.js';

export type { SessionInfo };
export type Outputs = inferRouterOutputs<AppRouter>;
export type PluginSummary = Outputs['plugins']['list'][number];
export type PluginDetail = Outputs['plugins']['get'];
export type CatalogEntry = Outputs['plugins']['catalog']['entries'][number];
export type Hay = TRPCClient<AppRouter>;

/** The session's CSRF token; sent as X-Hay-CSRF on every API request. Kept in memory only. */
let csrfToken = '';

/** The typed tRPC client of the host's own API, authenticated by the session cookie. */
export const hay: Hay = createTRPCClient<AppRouter>({
  links: [
    httpLink({
      url: '/trpc',
      headers: () => ({ 'x-hay-csrf': csrfToken }),
      fetch: (url, init) => fetch(url, { ...init, credentials: 'same-origin' }),
    }),
  ],
});

async function sessionCall(method: 'GET' | 'POST' | 'DELETE', body?: unknown): Promise<Response> {
  return fetch('/v1/session', {
    method,
    credentials: 'same-origin',
    headers: {
      'x-hay-csrf': csrfToken,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

async function errorOf(res: Response): Promise<Error> {
  const json = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
  return new Error(json.error?.message ?? `HTTP ${res.status}`);
}

/** The current session, or null when not signed in. */
export async function currentSession(): Promise<SessionInfo | null> {
  const res = await sessionCall('GET');
  if (res.status === 401) return null;
  if (!res.ok) throw await errorOf(res);
  const info = (await res.json()) as SessionInfo;
  csrfToken = info.csrfToken;
  return info;
}

export async function signIn(token: string): Promise<SessionInfo> {
  const res = await sessionCall('POST', { token });
  if (!res.ok) throw await errorOf(res);
  const info = (await res.json()) as SessionInfo;
  csrfToken = info.csrfToken;
  return info;
}

export async function signOut(): Promise<void> {
  const res = await sessionCall('DELETE');
  csrfToken = '';
  if (!res.ok) throw await errorOf(res);
}

export interface UploadProblem {
  file?: string;
  pointer?: string;
  message: string;
}

/** POST /v1/plugins/upload; resolves the installed plugin or rejects with the validation problems. */
export async function uploadZip(
  file: File,
): Promise<
  { ok: true; pluginId: string; version: string } | { ok: false; message: string; problems: UploadProblem[] }
> {
  const form = new FormData();
  form.append('file', file);
  const res = await fetch('/v1/plugins/upload', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'x-hay-csrf': csrfToken },
    body: form,
  });
  const json = (await res.json().catch(() => ({}))) as {
    pluginId?: string;
    version?: string;
    error?: { code?: string; message?: string; problems?: unknown };
  };
  if (res.ok && json.pluginId) return { ok: true, pluginId: json.pluginId, version: json.version ?? '' };
  return {
    ok: false,
    message: json.error?.message ?? `HTTP ${res.status}`,
    problems: problemsOf(json.error?.problems),
  };
}

function problemsOf(list: unknown): UploadProblem[] {
  if (!Array.isArray(list)) return [];
  return list.map((p): UploadProblem => {
    const o = (p ?? {}) as Record<string, unknown>;
    return {
      ...(typeof o.file === 'string' ? { file: o.file } : {}),
      ...(typeof o.pointer === 'string' ? { pointer: o.pointer } : {}),
      message: typeof o.message === 'string' ? o.message : JSON.stringify(p),
    };
  });
}

/** A message for the page from any error (tRPC errors carry the host's code). */
export function errorMessage(err: unknown): string {
  if (err instanceof TRPCClientError) {
    const data = err.data as { hayCode?: string } | undefined;
    return data?.hayCode ? `${data.hayCode}: ${err.message}` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
