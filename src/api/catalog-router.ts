import { z } from 'zod';
import { pluginId } from './inputs.js';
import { orgAdminProcedure, orgProcedure } from './trpc.js';

const installType = z.enum(['local', 'remote']);
const entryName = z
  .string()
  .min(3)
  .max(200)
  .regex(/^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/, 'must be a catalog entry name (reverse DNS, one slash)');

export const catalogInputs = {
  catalog: z
    .object({
      /** Words matched against name, title, description and tags (all must match). */
      query: z.string().max(200).optional(),
      type: installType.optional(),
      category: z.string().max(100).optional(),
      tag: z.string().max(50).optional(),
      installed: z.boolean().optional(),
      cursor: z.string().max(100).optional(),
      limit: z.number().int().min(1).max(100).default(50),
    })
    .default({ limit: 50 }),
  installFromCatalog: z.object({
    name: entryName,
    type: installType.optional(),
    /** Default: the entry's `pluginId` as plugins.catalog shows it. */
    pluginId: pluginId.optional(),
    /** local entries: hosts the server may reach (manifest permissions.network.hosts). */
    networkHosts: z
      .array(
        z
          .string()
          .max(260)
          .regex(
            /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/,
            'a host name or host:port',
          ),
      )
      .max(50)
      .optional(),
  }),
};

/** plugins.catalog / plugins.installFromCatalog: the marketplace catalog (src/catalog/). */
export const catalogProcedures = {
  catalog: orgProcedure
    .input(catalogInputs.catalog)
    .query(({ ctx, input }) => ctx.services.catalog.list(ctx.caller.organizationId, input)),
  installFromCatalog: orgAdminProcedure
    .input(catalogInputs.installFromCatalog)
    .mutation(({ ctx, input }) =>
      ctx.services.catalog.install(ctx.caller.organizationId, ctx.caller.actor, input),
    ),
};
