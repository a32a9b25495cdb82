import type { AuditAction } from '../audit/audit-log.js';
import { gatewayRouter } from '../gateway/router.js';
import { builderRouter } from './builder-router.js';
import { eventsRouter } from './events-router.js';
import { adminAuthProcedures, pluginAuthProcedures } from './auth-router.js';
import { inputs } from './inputs.js';
import { lifecycleAdminProcedures, lifecyclePluginProcedures } from './lifecycle-router.js';
import { catalogProcedures } from './catalog-router.js';
import type { Caller, ToolCallInput } from '../invocation/plugin-service.js';
import type { CallToolResult } from '../runtime/ports.js';
import { adminProcedure, orgAdminProcedure, orgProcedure, router, type ApiServices } from './trpc.js';

function auditQuery(i: {
  organizationId?: string | undefined;
  pluginId?: string | undefined;
  action?: string | undefined;
  outcome?: 'ok' | 'error' | 'denied' | undefined;
  since?: string | undefined;
  until?: string | undefined;
  cursor?: number | undefined;
  limit: number;
}) {
  return {
    ...(i.organizationId ? { organizationId: i.organizationId } : {}),
    ...(i.pluginId ? { pluginId: i.pluginId } : {}),
    ...(i.action ? { action: i.action as AuditAction } : {}),
    ...(i.outcome ? { outcome: i.outcome } : {}),
    ...(i.since ? { since: new Date(i.since) } : {}),
    ...(i.until ? { until: new Date(i.until) } : {}),
    ...(i.cursor ? { cursor: i.cursor } : {}),
    limit: i.limit,
  };
}

/** ApiContext.signal is made per HTTP request (createContext in src/api/http-server.ts). */
const PER_REQUEST = { signalPerRequest: true } as const;

/** plugins.invokeTool. The tRPC fast path (trpc-fast-path.ts) calls this same function. */
export function invokeToolResolver(opts: {
  ctx: { services: ApiServices; caller: Caller; signal: AbortSignal | undefined };
  input: ToolCallInput;
}): Promise<CallToolResult> {
  return opts.ctx.services.plugins.invokeTool(opts.ctx.caller, opts.input, opts.ctx.signal, PER_REQUEST);
}

const adminRouter = router({
  createOrganization: adminProcedure.input(inputs.createOrganization).mutation(async ({ ctx, input }) => {
    const { organization, apiKey } = await ctx.services.organizations.create(input.name);
    ctx.services.audit.record({
      organizationId: organization.id,
      actor: 'admin',
      action: 'org.create',
      outcome: 'ok',
      details: { name: organization.name },
    });
    return { organizationId: organization.id, name: organization.name, apiKey };
  }),
  listOrganizations: adminProcedure.query(({ ctx }) => ctx.services.organizations.list()),
  createApiKey: adminProcedure.input(inputs.createApiKey).mutation(async ({ ctx, input }) => {
    const { plain, info } = await ctx.services.organizations.createApiKey(
      input.organizationId,
      input.role,
      input.restrict,
    );
    ctx.services.audit.record({
      organizationId: input.organizationId,
      actor: 'admin',
      action: 'apikey.create',
      outcome: 'ok',
      details: { prefix: info.prefix, role: info.role, ...(info.scopes ? { scopes: info.scopes } : {}) },
    });
    return { apiKey: plain, keyId: info.id, prefix: info.prefix, role: info.role, scopes: info.scopes };
  }),
  revokeApiKey: adminProcedure.input(inputs.revokeApiKey).mutation(async ({ ctx, input }) => {
    const info = await ctx.services.organizations.revokeApiKey(input.keyId);
    ctx.services.audit.record({
      organizationId: info.organizationId,
      actor: 'admin',
      action: 'apikey.revoke',
      outcome: 'ok',
      details: { prefix: info.prefix },
    });
    return { success: true as const, keyId: info.id, revokedAt: info.revokedAt };
  }),
  listApiKeys: adminProcedure
    .input(inputs.orgRef)
    .query(({ ctx, input }) => ctx.services.organizations.listApiKeys(input.organizationId)),
  health: adminProcedure.query(async ({ ctx }) => (await ctx.services.admin.health?.()) ?? {}),
  rescanPlugins: adminProcedure.mutation(({ ctx }) => ctx.services.plugins.rescan()),
  rotateEncryptionKey: adminProcedure.mutation(({ ctx }) => ctx.services.admin.rotateKeys()),
  auditLog: adminProcedure
    .input(inputs.audit)
    .query(({ ctx, input }) => ctx.services.audit.query(auditQuery(input))),
  ...lifecycleAdminProcedures,
  ...adminAuthProcedures,
});

const pluginsRouter = router({
  list: orgProcedure.query(({ ctx }) => ctx.services.plugins.list(ctx.caller.organizationId)),
  get: orgProcedure
    .input(inputs.pluginRef)
    .query(({ ctx, input }) => ctx.services.plugins.get(ctx.caller.organizationId, input.pluginId)),
  enable: orgAdminProcedure.input(inputs.enable).mutation(({ ctx, input }) =>
    ctx.services.plugins.enable(ctx.caller, input.pluginId, input.configuration, {
      enableDependencies: input.enableDependencies,
    }),
  ),
  disable: orgAdminProcedure
    .input(inputs.pluginRef)
    .mutation(({ ctx, input }) => ctx.services.plugins.disable(ctx.caller, input.pluginId)),
  configure: orgAdminProcedure
    .input(inputs.configure)
    .mutation(({ ctx, input }) =>
      ctx.services.plugins.configure(ctx.caller, input.pluginId, input.configuration),
    ),
  /** The plugin's README.md as untrusted Markdown text (at most 256 KB). */
  readme: orgProcedure
    .input(inputs.pluginRef)
    .query(({ ctx, input }) => ctx.services.plugins.readme(ctx.caller.organizationId, input.pluginId)),
  listTools: orgProcedure
    .input(inputs.pluginRef)
    .query(({ ctx, input }) => ctx.services.plugins.listTools(ctx.caller, input.pluginId)),
  invokeTool: orgProcedure.input(inputs.invokeTool).mutation(invokeToolResolver),
  invokeToolsBatch: orgProcedure
    .input(inputs.invokeToolsBatch)
    .mutation(({ ctx, input }) => ctx.services.plugins.invokeToolsBatch(ctx.caller, input.calls, ctx.signal)),
  instances: orgProcedure.query(({ ctx }) => ctx.services.plugins.instances(ctx.caller.organizationId)),
  /** Stops this organization's instance of the plugin (drained); the next call starts it again. */
  stopInstance: orgAdminProcedure
    .input(inputs.pluginRef)
    .mutation(({ ctx, input }) => ctx.services.plugins.stopInstance(ctx.caller, input.pluginId, false)),
  /** Stops then starts this organization's instance of the plugin. */
  restartInstance: orgAdminProcedure
    .input(inputs.pluginRef)
    .mutation(({ ctx, input }) => ctx.services.plugins.stopInstance(ctx.caller, input.pluginId, true)),
  /** The last stderr lines of this organization's instance of the plugin (shared instances: none). */
  logs: orgProcedure
    .input(inputs.logs)
    .query(({ ctx, input }) =>
      ctx.services.plugins.logs(ctx.caller.organizationId, input.pluginId, input.lines),
    ),
  metrics: orgProcedure
    .input(inputs.pluginRef)
    .query(({ ctx, input }) => ctx.services.plugins.metricsFor(ctx.caller.organizationId, input.pluginId)),
  uninstall: orgAdminProcedure
    .input(inputs.pluginRef)
    .mutation(({ ctx, input }) =>
      ctx.services.admin.uninstallPlugin(ctx.caller.organizationId, input.pluginId, ctx.caller.actor),
    ),
  rollback: orgAdminProcedure
    .input(inputs.pluginRef)
    .mutation(({ ctx, input }) =>
      ctx.services.admin.rollbackPlugin(ctx.caller.organizationId, input.pluginId, ctx.caller.actor),
    ),
  ...lifecyclePluginProcedures,
  ...pluginAuthProcedures,
  ...catalogProcedures,
});

const auditRouter = router({
  list: orgProcedure
    .input(inputs.audit.omit({ organizationId: true }))
    .query(({ ctx, input }) =>
      ctx.services.audit.query(auditQuery({ ...input, organizationId: ctx.caller.organizationId })),
    ),
});

export const appRouter = router({
  admin: adminRouter,
  plugins: pluginsRouter,
  audit: auditRouter,
  gateway: gatewayRouter,
  events: eventsRouter,
  builder: builderRouter,
});
export type AppRouter = typeof appRouter;
