import { z } from 'zod';
import { DEFINITION_LIMITS } from '../builder/engine/definition.js';
import { jsonBytesAtMost as bytesAtMost, LIMITS, object, pluginId } from './inputs.js';
import { orgAdminProcedure, router } from './trpc.js';

/** The definition's own schema and rules run in the service (DEFINITION_INVALID with JSON pointers). */
const definition = object.superRefine(bytesAtMost(DEFINITION_LIMITS.definitionBytes, 'definition'));

/** Edge validation of `builder.*` (the dashboard's no-code plugin builder). */
export const builderInputs = {
  save: z.object({
    definition,
    /** Default: one patch above the highest kept version (1.0.0 first). */
    version: z
      .string()
      .max(64)
      .regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'must be a semantic version such as 1.2.0')
      .optional(),
  }),
  get: z.object({ pluginId }),
  test: z.object({
    definition,
    toolName: z.string().min(1).max(64),
    params: object.superRefine(bytesAtMost(LIMITS.argumentBytes, 'params')).default({}),
    configuration: object.superRefine(bytesAtMost(LIMITS.configurationBytes, 'configuration')).default({}),
  }),
};

/** `builder.*`: define, test and save no-code HTTP plugins of the caller's organization (org admins). */
export const builderRouter = router({
  list: orgAdminProcedure.query(({ ctx }) => ctx.services.builder.list(ctx.caller.organizationId)),
  get: orgAdminProcedure
    .input(builderInputs.get)
    .query(({ ctx, input }) => ctx.services.builder.get(ctx.caller.organizationId, input.pluginId)),
  save: orgAdminProcedure
    .input(builderInputs.save)
    .mutation(({ ctx, input }) => ctx.services.builder.save(ctx.caller, input)),
  test: orgAdminProcedure
    .input(builderInputs.test)
    .mutation(({ ctx, input }) => ctx.services.builder.test(ctx.caller, input, ctx.signal)),
});
