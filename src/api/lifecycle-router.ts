import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { pluginId, uuid } from './inputs.js';
import { adminProcedure, orgAdminProcedure, orgProcedure } from './trpc.js';

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

const versionRef = {
  /** A kept version by its version string (the newest kept one with it) or by id. */
  version: z.string().min(1).max(64).optional(),
  versionId: uuid.optional(),
};
const needsRef = (i: { version?: string | undefined; versionId?: string | undefined }) =>
  i.version !== undefined || i.versionId !== undefined;
const pinInput = z
  .object({ pluginId, ...versionRef })
  .refine(needsRef, { message: 'give version or versionId' });
const adminPinInput = z
  .object({ pluginId, organizationId: uuid.optional(), ...versionRef })
  .refine(needsRef, { message: 'give version or versionId' });
const rolloutRef = z.object({ pluginId, organizationId: uuid.optional() });
const rolloutInput = z
  .object({
    pluginId,
    ...versionRef,
    percent: z.number().min(0).max(100),
    scope: z.enum(['orgs', 'subjects']).default('orgs'),
    /** scope 'subjects': the organization whose subjects are split; also names the owner of a custom plugin. */
    organizationId: uuid.optional(),
    /** Automatic rollback above this failure fraction (0..1) of the canary's calls over windowMinutes. */
    maxErrorRate: z.number().min(0).max(1).optional(),
    minCalls: z.number().int().min(1).max(1_000_000).optional(),
    windowMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .optional(),
  })
  .refine(needsRef, { message: 'give version or versionId' });

/** Lifecycle procedures of an organization, spread into the `plugins` router. */
export const lifecyclePluginProcedures = {
  versions: orgProcedure
    .input(z.object({ pluginId }))
    .query(({ ctx, input }) => ctx.services.lifecycle.versions(ctx.caller.organizationId, input.pluginId)),
  /** Pins (or rolls back) this organization to a kept version. */
  pinVersion: orgAdminProcedure
    .input(pinInput)
    .mutation(({ ctx, input }) =>
      ctx.services.lifecycle.pin(ctx.caller.organizationId, input.pluginId, input, ctx.caller.actor),
    ),
  /** Back to following the latest version. */
  unpinVersion: orgAdminProcedure
    .input(z.object({ pluginId }))
    .mutation(({ ctx, input }) =>
      ctx.services.lifecycle.unpin(ctx.caller.organizationId, input.pluginId, ctx.caller.actor),
    ),
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
  pluginVersions: adminProcedure.input(rolloutRef).query(({ ctx, input }) =>
    ctx.services.lifecycle.versions(null, input.pluginId).catch((err: unknown) => {
      if (input.organizationId === undefined) throw err;
      return ctx.services.lifecycle.versions(input.organizationId, input.pluginId);
    }),
  ),
  /** Rollback to a kept version: for `organizationId`, or without it for every organization. */
  rollbackVersion: adminProcedure
    .input(adminPinInput)
    .mutation(({ ctx, input }) =>
      ctx.services.lifecycle.pin(input.organizationId ?? null, input.pluginId, input, 'admin'),
    ),
  unpinVersion: adminProcedure
    .input(rolloutRef)
    .mutation(({ ctx, input }) =>
      ctx.services.lifecycle.unpin(input.organizationId ?? null, input.pluginId, 'admin'),
    ),
  rollout: adminProcedure
    .input(rolloutRef)
    .query(({ ctx, input }) => ctx.services.lifecycle.rollout(input.pluginId, input.organizationId)),
  /** Starts a canary (or adjusts the active one's percent and threshold). */
  setRollout: adminProcedure
    .input(rolloutInput)
    .mutation(({ ctx, input }) =>
      ctx.services.lifecycle.setRollout(input.pluginId, input, 'admin', input.organizationId),
    ),
  promoteRollout: adminProcedure
    .input(rolloutRef)
    .mutation(({ ctx, input }) =>
      ctx.services.lifecycle.endRollout(input.pluginId, 'promoted', 'admin', input.organizationId),
    ),
  abortRollout: adminProcedure
    .input(rolloutRef)
    .mutation(({ ctx, input }) =>
      ctx.services.lifecycle.endRollout(input.pluginId, 'aborted', 'admin', input.organizationId),
    ),
};
