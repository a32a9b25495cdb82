import { inputs } from './inputs.js';
import { adminProcedure, orgAdminProcedure, orgProcedure } from './trpc.js';

/** plugins.connect / authStatus / disconnect: per-organization plugin authorization (OAuth 2.1). */
export const pluginAuthProcedures = {
  connect: orgAdminProcedure
    .input(inputs.pluginRef)
    .mutation(({ ctx, input }) =>
      ctx.services.pluginAuth.connect(ctx.caller.organizationId, input.pluginId, ctx.caller.actor),
    ),
  authStatus: orgProcedure
    .input(inputs.pluginRef)
    .query(({ ctx, input }) => ctx.services.pluginAuth.status(ctx.caller.organizationId, input.pluginId)),
  disconnect: orgAdminProcedure
    .input(inputs.pluginRef)
    .mutation(({ ctx, input }) =>
      ctx.services.pluginAuth.disconnect(ctx.caller.organizationId, input.pluginId, ctx.caller.actor),
    ),
};

/** admin.rotateSigningKey: new JWT signing key; the old one stays in the JWKS for the longest token TTL. */
export const adminAuthProcedures = {
  rotateSigningKey: adminProcedure.mutation(({ ctx }) => ctx.services.pluginAuth.rotateSigningKey('admin')),
};
