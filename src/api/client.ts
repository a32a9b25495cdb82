import { createTRPCClient, httpLink, TRPCClientError, type TRPCClient } from '@trpc/client';
import type { AppRouter } from './router.js';

export interface HayClientOptions {
  /** Base URL of the host, e.g. `http://127.0.0.1:3000` (no `/trpc`). */
  url: string;
  /** An organization API key for `plugins.*` and `audit.*`, or the admin token for `admin.*`. */
  apiKey: string;
  /** Replaces the global fetch (tests, proxies, custom agents). */
  fetch?: typeof globalThis.fetch;
}

export type HayClient = TRPCClient<AppRouter>;

/**
 * A typed client for the host's tRPC API: `hay.plugins.invokeTool.mutate({...})`,
 * `hay.plugins.list.query()`. One HTTP request per call (no batching), plain JSON (no transformer),
 * `Authorization: Bearer <apiKey>` on every request. Errors reject with `TRPCClientError`, whose
 * `data.code` is the tRPC code (e.g. `NOT_FOUND`) and `data.hayCode` the host's own code.
 */
export function createHayClient(options: HayClientOptions): HayClient {
  const base = options.url.replace(/\/+$/, '');
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${base}/trpc`,
        headers: () => ({ authorization: `Bearer ${options.apiKey}` }),
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
    ],
  });
}

export { TRPCClientError };
export type { AppRouter };
