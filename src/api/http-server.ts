import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import type { OrganizationService } from '../tenancy/organizations.js';
import { LIMITS } from './inputs.js';
import { registerInvokeRoute } from './invoke-route.js';
import { registerTrpcFastPath } from './trpc-fast-path.js';
import { appRouter, type AppRouter } from './router.js';
import type { ApiContext, ApiServices } from './trpc.js';
import { bearerToken } from './bearer.js';
import { requestCredential } from '../web-session/request-auth.js';

export interface HttpServerDeps {
  services: ApiServices;
  metrics: Metrics;
  organizations: OrganizationService;
  bodyLimitBytes: number;
  /**
   * Most time to receive a whole request (headers and body) before 408 and close; checked every
   * min(requestTimeoutMs / 4, 30 s). Config httpRequestTimeoutMs; default 30 s.
   */
  requestTimeoutMs?: number;
  /** Socket inactivity timeout (config httpConnectionTimeoutMs); must exceed the longest call. Default 120 s. */
  connectionTimeoutMs?: number;
  isReady: () => boolean;
  /** Extra facts for GET /healthz (e.g. the sandbox and whether tenant code is refused or unsandboxed). */
  health?: () => Record<string, unknown>;
  /** Extra routes (platform APIs, uploads). */
  register?: (app: FastifyInstance) => void;
  /** Answer hot tRPC procedures without the Fetch adapter (src/api/trpc-fast-path.ts). Default true. */
  trpcFastPath?: boolean;
}

/**
 * The host's HTTP surface: `GET /healthz` (200 once ready, 503 before/while shutting down), tRPC at
 * `/trpc` (plain JSON, no transformer), `GET /metrics` (admin token), `POST /v1/invoke` (plugins.invokeTool
 * without tRPC, src/api/invoke-route.ts), plus routes from `register`.
 */
export function createHttpServer(deps: HttpServerDeps): FastifyInstance {
  // maxParamLength: tRPC batch URLs name every procedure (`/trpc/a,b,c?batch=1`); fastify's default of 100
  // characters answered 414 for batches of more than about five calls
  const requestTimeoutMs = deps.requestTimeoutMs ?? 30_000;
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimitBytes,
    // slow-body defence: a request that trickles in is cut at requestTimeout, an idle socket at
    // connectionTimeout (Node checks request deadlines every connectionsCheckingInterval)
    serverFactory: (handler) => {
      const server = createServer(
        {
          requestTimeout: requestTimeoutMs,
          headersTimeout: Math.min(60_000, requestTimeoutMs),
          connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
        },
        handler,
      );
      server.setTimeout(deps.connectionTimeoutMs ?? 120_000);
      return server;
    },
    forceCloseConnections: true,
    routerOptions: { maxParamLength: 8192 },
  });
  app.get('/healthz', async (_req, reply) =>
    deps.isReady()
      ? reply.send({ status: 'ok', ...deps.health?.() })
      : reply.status(503).send({ status: 'starting' }),
  );
  app.get('/metrics', async (req, reply) => {
    const header = req.headers.authorization;
    const principal = await deps.organizations.authenticate(bearerToken(header)).catch(() => undefined);
    if (principal?.kind !== 'admin')
      return reply
        .status(401)
        .send({ error: { code: 'UNAUTHORIZED', message: 'GET /metrics needs the admin token' } });
    return reply
      .header('content-type', deps.metrics.registry.contentType)
      .send(await deps.metrics.registry.metrics());
  });
  /** `calls`: procedures the request carries (the tRPC adapter: up to LIMITS.batchCalls). */
  const createContext = (req: FastifyRequest, res: FastifyReply, calls: number): ApiContext => {
    const credential = requestCredential(req);
    const controller = new AbortController();
    // each call of a tRPC batch listens on this signal (Node warns past 10 listeners)
    if (calls > 2) setMaxListeners(4 * calls, controller.signal);
    // the client went away before the answer was written: cancel the work
    res.raw.once('close', () => {
      if (!res.raw.writableFinished) controller.abort();
    });
    return {
      services: deps.services,
      token: credential.token,
      session: credential.session,
      signal: controller.signal,
      ip: req.ip,
    };
  };
  if (deps.trpcFastPath ?? true)
    registerTrpcFastPath(app, {
      router: appRouter,
      prefix: '/trpc',
      maxBatchSize: LIMITS.batchCalls,
      createContext,
    });
  void app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      maxBatchSize: LIMITS.batchCalls,
      createContext: ({ req, res }) => createContext(req, res, LIMITS.batchCalls),
    } satisfies FastifyTRPCPluginOptions<AppRouter>['trpcOptions'],
  });
  registerInvokeRoute(app, {
    organizations: deps.organizations,
    plugins: deps.services.plugins,
    audit: deps.services.audit,
    logger: deps.services.logger,
  });
  deps.register?.(app);
  return app;
}
