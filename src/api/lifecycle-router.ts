import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { pluginId, uuid } from './inputs.js';
import { adminProcedure, orgProcedure } from './trpc.js';

const MAX_RANGE_DAYS = 400;

const analyticsInput = z.object({
  pluginId: pluginId.optional(),
  version: z.string().min(1).max(64).optional(),
  from: z.iso.datetime(),
  to: z.iso.datetime(),
  groupBy: z.enum(['hour', 'day', 'tool', 'version']).default('hour'),
});

function range(i: { from: string; to: string }): { from: Date; to: Date } {
  const from = new Date(i.from);
  const to = new Date(i.to);
  if (to <= from) throw new ValidationError('INPUT_INVALID', '"to" must be after "from"');
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000)
    throw new ValidationError('INPUT_INVALID', `the range is limited to ${MAX_RANGE_DAYS} days`);
  return { from, to };
}

/** Lifecycle procedures of an organization, spread into the `plugins` router. */
export const lifecyclePluginProcedures = {
  analytics: orgProcedure
    .input(analyticsInput)
    .query(({ ctx, input }) =>
      ctx.services.lifecycle.analytics(ctx.caller.organizationId, { ...input, ...range(input) }),
    ),
};

/** Lifecycle procedures of the operator, spread into the `admin` router. */
export const lifecycleAdminProcedures = {
  analytics: adminProcedure
    .input(analyticsInput.extend({ organizationId: uuid.optional() }))
    .query(({ ctx, input }) => ctx.services.lifecycle.analytics(null, { ...input, ...range(input) })),
};
