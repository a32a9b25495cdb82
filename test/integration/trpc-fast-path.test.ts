import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createHayClient, TRPCClientError } from '../../src/api/client.js';
import { TRPC_CODE } from '../../src/api/error-map.js';
import Fastify from 'fastify';
import { createHttpServer } from '../../src/api/http-server.js';
import { inputs } from '../../src/api/inputs.js';
import { appRouter, invokeToolResolver } from '../../src/api/router.js';
import { registerTrpcFastPath } from '../../src/api/trpc-fast-path.js';
import { orgProcedure, publicProcedure, router } from '../../src/api/trpc.js';
import type { ApiServices } from '../../src/api/trpc.js';
import { AuthError, HayError, type HayErrorCode } from '../../src/errors.js';
import type { ToolCallInput } from '../../src/invocation/plugin-service.js';
import { createLogger } from '../../src/logger.js';
import type { Metrics } from '../../src/observability/metrics.js';
import type { OrganizationService } from '../../src/tenancy/organizations.js';

/**
 * The tRPC fast path (src/api/trpc-fast-path.ts) against the tRPC adapter itself: two HTTP servers over
 * the same fake services, one with the fast path and one without, must answer every request byte for
 * byte alike (status, content-type, vary, body): success, an isError result, every HayError code, an
 * unexpected error, input validation, auth, batches of one status and of mixed statuses. The typed client
 * sees the same results and errors from both.
 */

const CODES = Object.keys(TRPC_CODE) as HayErrorCode[];

const organizations = {
  async authenticate(token: string | undefined) {
    if (token === 'org-key')
      return { kind: 'org', organizationId: 'org-1', role: 'admin', keyId: 'k1', keyPrefix: 'hay_k1' };
    if (token === 'admin-token') return { kind: 'admin' };
    throw new AuthError('UNAUTHORIZED', 'invalid or missing API key');
  },
} as unknown as OrganizationService;

const plugins = {
  async invokeTool(_caller: unknown, input: ToolCallInput) {
    const name = input.toolName;
    if (name === 'ok') return { content: [{ type: 'text', text: String(input.arguments.message ?? '') }] };
    if (name === 'iserror') return { isError: true, content: [{ type: 'text', text: 'no' }] };
    if (name === 'boom') throw new Error('internal detail that must not leak');
    if (name.startsWith('throw:')) {
      const code = name.slice(6) as HayErrorCode;
      throw new HayError(code, `failed with ${code}`, { details: { retryAfterMs: 5 } });
    }
    throw new HayError('TOOL_NOT_FOUND', `no tool named "${name}"`);
  },
};

const services = {
  logger: createLogger({ level: 'silent' }),
  organizations,
  plugins,
  audit: { record() {}, recordAuthFailure() {} },
  admin: {},
} as unknown as ApiServices;

let fast: FastifyInstance;
let plain: FastifyInstance;
let fastUrl: string;
let plainUrl: string;

beforeAll(async () => {
  const make = (trpcFastPath: boolean) =>
    createHttpServer({
      services,
      metrics: {} as Metrics,
      organizations,
      bodyLimitBytes: 1024 * 1024,
      isReady: () => true,
      trpcFastPath,
    });
  fast = make(true);
  plain = make(false);
  await fast.listen({ host: '127.0.0.1', port: 0 });
  await plain.listen({ host: '127.0.0.1', port: 0 });
  fastUrl = `http://127.0.0.1:${(fast.server.address() as AddressInfo).port}`;
  plainUrl = `http://127.0.0.1:${(plain.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await fast?.close();
  await plain?.close();
});

interface Raw {
  status: number;
  contentType: string | null;
  vary: string | null;
  body: string;
}

async function post(base: string, url: string, body: unknown, token?: string): Promise<Raw> {
  const res = await fetch(`${base}${url}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    vary: res.headers.get('vary'),
    body: await res.text(),
  };
}

/** Both servers' answers to the same request; they must be identical. */
async function both(url: string, body: unknown, token: string | null = 'org-key') {
  const t = token ?? undefined;
  const [a, b] = await Promise.all([post(fastUrl, url, body, t), post(plainUrl, url, body, t)]);
  expect(a).toEqual(b);
  return a;
}

const call = (toolName: string, args: Record<string, unknown> = {}) => ({
  pluginId: 'p',
  toolName,
  arguments: args,
});

describe('tRPC fast path answers exactly as tRPC', () => {
  it('a success and an isError result', async () => {
    const ok = await both('/trpc/plugins.invokeTool', call('ok', { message: 'hi' }));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ result: { data: { content: [{ type: 'text', text: 'hi' }] } } });
    const isError = await both('/trpc/plugins.invokeTool', call('iserror'));
    expect(isError.status).toBe(200);
  });

  it.each(CODES)('HayError %s: same status and error shape', async (code) => {
    const r = await both('/trpc/plugins.invokeTool', call(`throw:${code}`));
    const body = JSON.parse(r.body) as { error: { data: { hayCode?: string; httpStatus: number } } };
    expect(r.status).toBe(body.error.data.httpStatus);
    expect(r.status).not.toBe(200);
  });

  it('an unexpected error is an opaque internal error on both', async () => {
    const r = await both('/trpc/plugins.invokeTool', call('boom'));
    expect(r.status).toBe(500);
    expect(r.body).not.toContain('internal detail');
  });

  it('input validation, missing/invalid key and the admin token', async () => {
    expect((await both('/trpc/plugins.invokeTool', { pluginId: 'p' })).status).toBe(400);
    expect((await both('/trpc/plugins.invokeTool', 'not an object')).status).toBe(400);
    expect((await both('/trpc/plugins.invokeTool', call('ok'), 'wrong')).status).toBe(401);
    expect((await both('/trpc/plugins.invokeTool', call('ok'), null)).status).toBe(401);
    expect((await both('/trpc/plugins.invokeTool', call('ok'), 'admin-token')).status).toBe(403);
  });

  it('batches (?batch=1): all ok, all one error, mixed statuses (207), a missing index', async () => {
    const path = (n: number) => `/trpc/${Array(n).fill('plugins.invokeTool').join(',')}?batch=1`;
    const allOk = await both(path(2), { 0: call('ok', { message: 'a' }), 1: call('ok', { message: 'b' }) });
    expect(allOk.status).toBe(200);
    expect(JSON.parse(allOk.body)).toHaveLength(2);
    expect((await both(path(2), { 0: call('throw:RATE_LIMITED'), 1: call('throw:CAPACITY') })).status).toBe(
      429,
    );
    expect((await both(path(3), { 0: call('ok'), 1: call('nope'), 2: call('throw:TIMEOUT') })).status).toBe(
      207,
    );
    expect((await both(path(2), { 0: call('ok') })).status).toBe(207);
  });

  it('requests it does not take are answered by tRPC alone (GET, other procedures, extra query)', async () => {
    expect((await both('/trpc/plugins.invokeTool?x=1', call('ok'))).status).toBe(200);
    // a query in a POST batch: tRPC's own error, whatever it is, from both
    expect((await both('/trpc/plugins.invokeTool,plugins.list?batch=1', { 0: call('ok') })).status).not.toBe(
      200,
    );
    const get = await Promise.all(
      [fastUrl, plainUrl].map(async (u) => {
        const res = await fetch(`${u}/trpc/plugins.invokeTool`, {
          headers: { authorization: 'Bearer org-key' },
        });
        return { status: res.status, body: await res.text() };
      }),
    );
    expect(get[0]).toEqual(get[1]);
    expect(get[0]?.status).toBe(405);
  });

  it('the typed client gets the same results and errors through both', async () => {
    const clients = [fastUrl, plainUrl].map((url) => createHayClient({ url, apiKey: 'org-key' }));
    const results = await Promise.all(
      clients.map((c) => c.plugins.invokeTool.mutate(call('ok', { message: 'x' }))),
    );
    expect(results[0]).toEqual(results[1]);
    for (const tool of ['throw:PLUGIN_NOT_ENABLED', 'throw:RATE_LIMITED', 'boom', 'nope']) {
      const errors = await Promise.all(
        clients.map((c) =>
          c.plugins.invokeTool.mutate(call(tool)).then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      );
      expect(errors[0]).toBeInstanceOf(TRPCClientError);
      const [a, b] = errors as TRPCClientError<never>[];
      expect({ message: a?.message, data: a?.data, shape: a?.shape }).toEqual({
        message: b?.message,
        data: b?.data,
        shape: b?.shape,
      });
    }
  });

  it('the fast path builds no Fetch Request; the adapter does', async () => {
    const original = globalThis.Request;
    let built = 0;
    globalThis.Request = new Proxy(original, {
      construct(target, args) {
        built++;
        return Reflect.construct(target, args) as object;
      },
    });
    try {
      await post(fastUrl, '/trpc/plugins.invokeTool', call('ok'), 'org-key');
      expect(built).toBe(0);
      await post(plainUrl, '/trpc/plugins.invokeTool', call('ok'), 'org-key');
      expect(built).toBeGreaterThan(0);
    } finally {
      globalThis.Request = original;
    }
  });
});

describe('the fast path refuses to start when the router no longer matches it', () => {
  const register = (r: unknown) =>
    registerTrpcFastPath(Fastify(), {
      router: r as typeof appRouter,
      prefix: '/trpc',
      maxBatchSize: 10,
      createContext: () => {
        throw new Error('not called');
      },
    });

  it('accepts the real router', () => {
    expect(() => register(appRouter)).not.toThrow();
  });

  it.each([
    ['another resolver', orgProcedure.input(inputs.invokeTool).mutation(async () => ({ content: [] }))],
    ['another input', orgProcedure.input(inputs.pluginRef).mutation(invokeToolResolver as never)],
    [
      'one more middleware',
      orgProcedure
        .use(({ next }) => next())
        .input(inputs.invokeTool)
        .mutation(invokeToolResolver),
    ],
    ['not an org procedure', publicProcedure.input(inputs.invokeTool).mutation(invokeToolResolver as never)],
    ['a query', orgProcedure.input(inputs.invokeTool).query(invokeToolResolver)],
  ])('%s', (_what, procedure) => {
    const changed = router({ plugins: router({ invokeTool: procedure }) });
    expect(() => register(changed)).toThrow(/no longer orgProcedure/);
  });
});
