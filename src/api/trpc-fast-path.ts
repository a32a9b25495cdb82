import { callTRPCProcedure, getTRPCErrorFromUnknown, getTRPCErrorShape, type TRPCError } from '@trpc/server';
import { getHTTPStatusCode } from '@trpc/server/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppRouter } from './router.js';
import type { ApiContext } from './trpc.js';

/** Mutations answered without tRPC's Fetch adaptation. Each must be a mutation of `router`. */
export const FAST_PROCEDURES: ReadonlySet<string> = new Set(['plugins.invokeTool']);

export interface TrpcFastPathOptions {
  router: AppRouter;
  /** The tRPC plugin's prefix, e.g. `/trpc`. */
  prefix: string;
  maxBatchSize: number;
  /** The same context the tRPC adapter builds for this request. */
  createContext: (req: FastifyRequest, reply: FastifyReply) => ApiContext;
}

type Envelope = { result: { data: unknown } } | { error: unknown };

/**
 * A preHandler on the tRPC route that answers `POST <prefix>/<path>` itself when every procedure named in
 * `path` is in FAST_PROCEDURES: single calls and `?batch=1` batches (httpBatchLink's wire format), JSON
 * only. It calls the procedure through tRPC's own `callProcedure` (same middlewares, input parser,
 * context) and writes what tRPC's resolveResponse writes: `{result: {data}}` or `{error: shape}` from
 * the router's errorFormatter (an array for a batch), the status from tRPC's getHTTPStatusCode (207 for a
 * batch of mixed statuses), `content-type: application/json` and `vary: trpc-accept, accept`. Anything else
 * (other query parameters, streaming accept headers, a batch over maxBatchSize or whose body is not an
 * object, a body that is not JSON, non-POST methods) is left to the tRPC adapter unchanged. What it saves
 * per request: the Fetch `Request`/`Response` objects, the body's re-serialization and the response stream.
 */
export function registerTrpcFastPath(app: FastifyInstance, opts: TrpcFastPathOptions): void {
  const route = `${opts.prefix}/:path`;
  const config = opts.router._def._config;
  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST' || req.routeOptions.url !== route) return;
    const calls = planCalls(req, opts.maxBatchSize);
    if (!calls) return;
    const ctx = opts.createContext(req, reply);
    const errors: (TRPCError | undefined)[] = [];
    const envelopes = await Promise.all(
      calls.paths.map(async (path, index): Promise<Envelope> => {
        const input = calls.batch ? (calls.body as Record<string, unknown>)[String(index)] : calls.body;
        try {
          const data: unknown = await callTRPCProcedure({
            router: opts.router,
            path,
            getRawInput: async () => input,
            ctx,
            type: 'mutation',
            signal: ctx.signal,
            batchIndex: index,
          });
          errors[index] = undefined;
          return { result: { data } };
        } catch (cause) {
          const error = getTRPCErrorFromUnknown(cause);
          errors[index] = error;
          return { error: getTRPCErrorShape({ config, ctx, error, input, path, type: 'mutation' }) };
        }
      }),
    );
    const json = calls.batch ? envelopes : envelopes[0];
    const status = getHTTPStatusCode(json as never, errors as TRPCError[]);
    return reply
      .status(status)
      .header('vary', 'trpc-accept, accept')
      .header('content-type', 'application/json')
      .send(Buffer.from(JSON.stringify(json)));
  });
}

/** The calls of a request the fast path may answer, or undefined to leave it to tRPC. */
function planCalls(
  req: FastifyRequest,
  maxBatchSize: number,
): { paths: string[]; batch: boolean; body: unknown } | undefined {
  const raw = (req.params as { path?: unknown }).path;
  if (typeof raw !== 'string') return undefined;
  if (req.headers['trpc-accept'] !== undefined) return undefined;
  if (req.headers.accept?.includes('application/jsonl')) return undefined;
  if (!req.headers['content-type']?.toLowerCase().startsWith('application/json')) return undefined;
  const q = req.url.indexOf('?');
  const query = q < 0 ? '' : req.url.slice(q + 1);
  if (query !== '' && query !== 'batch=1') return undefined;
  const batch = query === 'batch=1';
  const paths = batch ? raw.split(',') : [raw];
  if (!paths.every((p) => FAST_PROCEDURES.has(p))) return undefined;
  let body = req.body;
  // the tRPC plugin's own JSON parser hands the body over as text
  if (typeof body === 'string') {
    try {
      body = body === '' ? undefined : (JSON.parse(body) as unknown);
    } catch {
      return undefined;
    }
  }
  if (batch) {
    if (paths.length > maxBatchSize) return undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  } else if (paths.length !== 1) return undefined;
  return { paths, batch, body };
}
