import { z } from 'zod';
import { orgAdminProcedure, orgProcedure, router } from '../api/trpc.js';

/** `gateway.*`: the organization's settings of its MCP endpoint `/mcp`. */
export const gatewayRouter = router({
  settings: orgProcedure.query(({ ctx }) => ctx.services.gateway.settings(ctx.caller.organizationId)),
  /** `unprefixedNames`: expose `<tool>` instead of `<pluginId>__<tool>` where the tool name is unique. */
  configure: orgAdminProcedure
    .input(z.object({ unprefixedNames: z.boolean() }).strict())
    .mutation(async ({ ctx, input }) => {
      const settings = await ctx.services.gateway.configure(ctx.caller.organizationId, input);
      ctx.services.audit.record({
        organizationId: ctx.caller.organizationId,
        actor: ctx.caller.actor,
        action: 'gateway.configure',
        outcome: 'ok',
        details: { ...settings },
      });
      return settings;
    }),
});
