import { initTRPC, TRPCError } from '@trpc/server';
import type { AuditLog } from '../audit/audit-log.js';
import type { PluginAuthApi } from '../auth/wiring.js';
import type { BuilderService } from '../builder/service.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import { isHayError } from '../errors.js';
import type { EventsService } from '../events/service.js';
import type { PluginService } from '../invocation/plugin-service.js';
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

/** Turns HayErrors into TRPCErrors with the mapped code; anything else becomes an opaque internal error. */
const errors = t.middleware(async ({ ctx, next, path }) => {
  const result = await next();
  if (!result.ok) {
    const err = result.error;
    const cause = err.cause;
    if (isHayError(cause))
      throw new TRPCError({ code: TRPC_CODE[cause.code], message: cause.message, cause });
    if (err.code === 'INTERNAL_SERVER_ERROR')
      ctx.services.logger.error({ err: cause ?? err, path }, 'request failed');
  }
  return result;
});

export const router = t.router;
export const publicProcedure = t.procedure.use(errors);

const authed = publicProcedure.use(async ({ ctx, next }) => {
  let principal: Principal;
  try {
    principal =
      ctx.token === undefined && ctx.session && ctx.services.sessions
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
  return next({ ctx: { principal } });
});

export const adminProcedure = authed.use(({ ctx, next }) => {
  if (ctx.principal.kind !== 'admin')
    throw new TRPCError({ code: 'FORBIDDEN', message: 'this call needs the admin token' });
  return next({ ctx: { principal: ctx.principal } });
});

/** Procedures of one organization: `ctx.caller` names the org and the key. */
export const orgProcedure = authed.use(({ ctx, next }) => {
  const p = ctx.principal;
  if (p.kind !== 'org')
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: 'this call needs an organization API key, not the admin token',
    });
  return next({
    ctx: {
      caller: {
        organizationId: p.organizationId,
        actor: `key:${p.keyPrefix}`,
        keyId: p.keyId,
        ...(p.scopes ? { scopes: p.scopes } : {}),
      },
      role: p.role,
    },
  });
});

/** Organization procedures that change state: need a key with the admin role. */
export const orgAdminProcedure = orgProcedure.use(({ ctx, next }) => {
  if (ctx.role !== 'admin')
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: 'this call needs an organization API key with the admin role',
    });
  return next();
});
