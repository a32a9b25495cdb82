import { getTRPCErrorFromUnknown, initTRPC, TRPCError } from '@trpc/server';
import type { AuditLog } from '../audit/audit-log.js';
import type { PluginAuthApi } from '../auth/wiring.js';
import type { BuilderService } from '../builder/service.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import { isUnstorableTextError } from '../db/storable.js';
import { isHayError, ValidationError } from '../errors.js';
import type { EventsService } from '../events/service.js';
import type { Caller, PluginService } from '../invocation/plugin-service.js';
import type { LifecycleApi } from '../lifecycle/wiring.js';
import type { Logger } from '../logger.js';
import type { OrganizationService, Principal } from '../tenancy/organizations.js';
import type { WebSessions } from '../web-session/service.js';
import { TRPC_CODE } from './error-map.js';

/** Services the API layer calls; built by createHost. */
export interface ApiServices {
  logger: Logger;
  organizations: OrganizationService;
  plugins: PluginService;
  audit: AuditLog;
  /** Settings of the organization's MCP endpoint (src/gateway/). */
  gateway: {
    settings(orgId: string): Promise<{ unprefixedNames: boolean }>;
    configure(orgId: string, settings: { unprefixedNames: boolean }): Promise<{ unprefixedNames: boolean }>;
  };
  /** Versions, pins, rollbacks, rollouts, analytics (src/lifecycle/). */
  lifecycle: LifecycleApi;
  /** src/events/: subscriptions, routes, webhook endpoints, deliveries. */
  events: EventsService;
  pluginAuth: PluginAuthApi;
  /** Dashboard sessions (src/web-session/); unset: only bearer tokens authenticate. */
  sessions?: Pick<WebSessions, 'authenticate'>;
  /** src/builder/: no-code HTTP plugins (define, test, save). */
  builder: Pick<BuilderService, 'list' | 'get' | 'save' | 'test'>;
  /** The marketplace catalog (src/catalog/). */
  catalog: Pick<CatalogService, 'list' | 'install'>;
  /** Optional admin operations wired by the host. */
  admin: {
    rotateKeys(): Promise<{ reencrypted: number; keyId: string }>;
    uninstallPlugin(orgId: string, pluginId: string, actor: string): Promise<{ success: true }>;
    rollbackPlugin(
      orgId: string,
      pluginId: string,
      actor: string,
    ): Promise<{ pluginId: string; version: string }>;
    /** Host health for the operator: sandbox layers, database, instance totals by state, queue depth. */
    health?(): Promise<Record<string, unknown>>;
  };
}

export interface ApiContext {
  services: ApiServices;
  /** Raw bearer token; resolved lazily by the auth middleware. */
  token: string | undefined;
  /** Without a bearer token: the dashboard session cookie and the request's X-Hay-CSRF header. */
  session?: { id: string; csrf: string | undefined } | undefined;
  /** Made for this HTTP request and dropped with it; aborted when the client goes away first. */
  signal: AbortSignal | undefined;
  ip: string;
}

const t = initTRPC.context<ApiContext>().create({
  isDev: false,
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    return {
      ...shape,
      message:
        error.code === 'INTERNAL_SERVER_ERROR' && !isHayError(cause) ? 'Internal error' : shape.message,
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        path: shape.data.path,
        hayCode: isHayError(cause) ? cause.code : undefined,
        ...(isHayError(cause) && cause.details ? { details: cause.details } : {}),
      },
    };
  },
});

/**
 * What a failed procedure answers: a HayError (thrown anywhere in the chain) becomes a TRPCError with the
 * mapped code and its message; any other unexpected error stays INTERNAL_SERVER_ERROR (the error formatter
 * hides its message) and is logged. The `errors` middleware and the tRPC fast path both use it.
 */
export function procedureError(logger: Logger, path: string, thrown: unknown): TRPCError {
  const err = getTRPCErrorFromUnknown(thrown);
  const cause = err.cause;
  if (isHayError(cause)) return new TRPCError({ code: TRPC_CODE[cause.code], message: cause.message, cause });
  // a caller's string the database cannot hold (NUL) reached a query: the input's fault, not the host's
  if (isUnstorableTextError(cause)) {
    const invalid = new ValidationError(
      'INPUT_INVALID',
      'text containing NUL characters cannot be stored or searched',
    );
    return new TRPCError({ code: TRPC_CODE[invalid.code], message: invalid.message, cause: invalid });
  }
  if (err.code === 'INTERNAL_SERVER_ERROR') logger.error({ err: cause ?? err, path }, 'request failed');
  return err;
}

const errors = t.middleware(async ({ ctx, next, path }) => {
  const result = await next();
  if (!result.ok) throw procedureError(ctx.services.logger, path, result.error);
  return result;
});

export const router = t.router;
export const publicProcedure = t.procedure.use(errors);

/**
 * The principal of the request's bearer token (the `authed` middleware; also the tRPC fast path). A failed
 * authentication is audited (aggregated per source and window) and rethrown.
 */
export async function authenticateRequest(ctx: ApiContext): Promise<Principal> {
  try {
    return ctx.token === undefined && ctx.session && ctx.services.sessions
      ? await ctx.services.sessions.authenticate(ctx.session.id, ctx.session.csrf)
      : await ctx.services.organizations.authenticate(ctx.token);
  } catch (err) {
    ctx.services.audit.recordAuthFailure({
      ip: ctx.ip,
      token: ctx.token,
      reason: isHayError(err) ? err.message : 'error',
    });
    throw err;
  }
}

/** `ctx.caller` and `ctx.role` of an organization procedure; FORBIDDEN for the admin token. */
export function orgCallerOf(p: Principal): {
  caller: Caller;
  role: Extract<Principal, { kind: 'org' }>['role'];
} {
  if (p.kind !== 'org')
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: 'this call needs an organization API key, not the admin token',
    });
  return {
    caller: {
      organizationId: p.organizationId,
      actor: `key:${p.keyPrefix}`,
      keyId: p.keyId,
      ...(p.scopes ? { scopes: p.scopes } : {}),
    },
    role: p.role,
  };
}

const authed = publicProcedure.use(async ({ ctx, next }) =>
  next({ ctx: { principal: await authenticateRequest(ctx) } }),
);

export const adminProcedure = authed.use(({ ctx, next }) => {
  if (ctx.principal.kind !== 'admin')
    throw new TRPCError({ code: 'FORBIDDEN', message: 'this call needs the admin token' });
  return next({ ctx: { principal: ctx.principal } });
});

/**
 * Procedures of one organization: `ctx.caller` names the org and the key. Its middlewares are exactly
 * errors, authed and this one; the tRPC fast path (trpc-fast-path.ts) runs the same steps for its
 * procedures and refuses to start if this chain changes.
 */
export const orgProcedure = authed.use(({ ctx, next }) => next({ ctx: orgCallerOf(ctx.principal) }));

/** Organization procedures that change state: need a key with the admin role. */
export const orgAdminProcedure = orgProcedure.use(({ ctx, next }) => {
  if (ctx.role !== 'admin')
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: 'this call needs an organization API key with the admin role',
    });
  return next();
});
