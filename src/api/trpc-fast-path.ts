import { getTRPCErrorShape, TRPCError } from '@trpc/server';
import { getHTTPStatusCode } from '@trpc/server/http';
import { getParseFn } from '@trpc/server/unstable-core-do-not-import';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../invocation/plugin-service.js';
import type { Principal } from '../tenancy/organizations.js';
import { inputs } from './inputs.js';
import { invokeToolResolver, type AppRouter } from './router.js';
import { authenticateRequest, orgCallerOf, orgProcedure, procedureError, type ApiContext } from './trpc.js';

/** The context an organization procedure's resolver gets (what orgProcedure's middlewares add). */
export interface OrgProcedureContext extends ApiContext {
  principal: Principal;
  caller: Caller;
  role: Extract<Principal, { kind: 'org' }>['role'];
}

/**
 * A mutation the fast path answers by running orgProcedure's steps itself (authenticateRequest, orgCallerOf,
 * the input parser, the resolver, procedureError on failure) instead of tRPC's middleware chain. Checked
 * against the router at registration: the router's procedure at `path` must be a mutation built as
 * `orgProcedure.input(input).mutation(resolver)` with these very objects, or registration throws.
 */
interface FastProcedure {
  input: unknown;
  resolver: (opts: { ctx: OrgProcedureContext; input: never }) => Promise<unknown>;
}

const FAST: Readonly<Record<string, FastProcedure>> = {
  'plugins.invokeTool': {
    input: inputs.invokeTool,
    resolver: invokeToolResolver as FastProcedure['resolver'],
  },
};

/** Mutations answered without tRPC's Fetch adaptation. */
export const FAST_PROCEDURES: ReadonlySet<string> = new Set(Object.keys(FAST));

export interface TrpcFastPathOptions {
  router: AppRouter;
  /** The tRPC plugin's prefix, e.g. `/trpc`. */
  prefix: string;
  maxBatchSize: number;
  /** The same context the tRPC adapter builds for this request; `calls` = procedures in the request. */
  createContext: (req: FastifyRequest, reply: FastifyReply, calls: number) => ApiContext;
}

type Envelope = { result: { data: unknown } } | { error: unknown };

interface ProcedureDef {
  type?: unknown;
  inputs?: unknown[];
  middlewares?: unknown[];
  resolver?: unknown;
}

/** Throws unless the router's procedure at `path` is exactly orgProcedure + `fast.input` + `fast.resolver`. */
function assertMatchesRouter(router: AppRouter, path: string, fast: FastProcedure): void {
  const procedures = router._def.procedures as Record<string, { _def?: ProcedureDef } | undefined>;
  const def = procedures[path]?._def;
  const chain = (orgProcedure as unknown as { _def: { middlewares: unknown[] } })._def.middlewares;
  const ok =
    def !== undefined &&
    def.type === 'mutation' &&
    def.inputs?.length === 1 &&
    def.inputs[0] === fast.input &&
    def.resolver === fast.resolver &&
    // orgProcedure's middlewares, then tRPC's input middleware and its resolver middleware
    def.middlewares?.length === chain.length + 2 &&
    chain.every((m, i) => def.middlewares?.[i] === m);
  if (!ok)
    throw new Error(
      `tRPC fast path: ${path} is no longer orgProcedure.input(...).mutation(...) with the same input and resolver; update src/api/trpc-fast-path.ts`,
    );
}

/**
 * A preHandler on the tRPC route that answers `POST <prefix>/<path>` itself when every procedure named in
 * `path` is in FAST_PROCEDURES: single calls and `?batch=1` batches (httpBatchLink's wire format), JSON
 * only. Each call runs the procedure's own steps (see FastProcedure: the same functions the middlewares
 * call, tRPC's own input parser, the router's resolver) and the answer is what tRPC's resolveResponse
 * writes: `{result: {data}}` or `{error: shape}` from the router's errorFormatter (an array for a batch),
 * the status from tRPC's getHTTPStatusCode (207 for a batch of mixed statuses), `content-type:
 * application/json` and `vary: trpc-accept, accept`. Anything else (other query parameters, streaming
 * accept headers, a batch over maxBatchSize or whose body is not an object, a body that is not JSON,
 * non-POST methods) is left to the tRPC adapter unchanged. What it saves per call: the Fetch
 * `Request`/`Response` objects, the body's re-serialization, the response stream, and tRPC's middleware
 * recursion (a context object copied per middleware).
 */
export function registerTrpcFastPath(app: FastifyInstance, opts: TrpcFastPathOptions): void {
  const route = `${opts.prefix}/:path`;
  const config = opts.router._def._config;
  const parsers = new Map<string, (raw: unknown) => unknown>();
  for (const [path, fast] of Object.entries(FAST)) {
    assertMatchesRouter(opts.router, path, fast);
    parsers.set(path, getParseFn(fast.input as Parameters<typeof getParseFn>[0]));
  }

  /** One call: the envelope, and the TRPCError when it failed. */
  const callOne = async (
    ctx: ApiContext,
    path: string,
    input: unknown,
  ): Promise<{ envelope: Envelope; error?: TRPCError }> => {
    try {
      const fast = FAST[path];
      const parse = parsers.get(path);
      if (!fast || !parse) throw new TRPCError({ code: 'NOT_FOUND', message: `No procedure "${path}"` });
      const principal = await authenticateRequest(ctx);
      const { caller, role } = orgCallerOf(principal);
      let parsed: unknown;
      try {
        parsed = await parse(input);
      } catch (cause) {
        throw new TRPCError({ code: 'BAD_REQUEST', cause });
      }
      const data = await fast.resolver({
        ctx: { ...ctx, principal, caller, role },
        input: parsed as never,
      });
      return { envelope: { result: { data } } };
    } catch (thrown) {
      const error = procedureError(ctx.services.logger, path, thrown);
      return {
        envelope: { error: getTRPCErrorShape({ config, ctx, error, input, path, type: 'mutation' }) },
        error,
      };
    }
  };

  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST' || req.routeOptions.url !== route) return;
    const calls = planCalls(req, opts.maxBatchSize);
    if (!calls) return;
    const ctx = opts.createContext(req, reply, calls.paths.length);
    let json: unknown;
    let status: number;
    if (!calls.batch) {
      const one = await callOne(ctx, calls.paths[0] as string, calls.body);
      json = one.envelope;
      status = one.error ? getHTTPStatusCode(json as never, [one.error]) : 200;
    } else {
      const body = calls.body as Record<string, unknown>;
      const results = await Promise.all(calls.paths.map((path, i) => callOne(ctx, path, body[String(i)])));
      json = results.map((r) => r.envelope);
      status = getHTTPStatusCode(json as never, results.map((r) => r.error) as TRPCError[]);
    }
    return (
      reply
        .status(status)
        .header('vary', 'trpc-accept, accept')
        .header('content-type', 'application/json')
        // a Buffer: fastify would add `; charset=utf-8` to a string, and tRPC does not
        .send(Buffer.from(JSON.stringify(json)))
    );
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
