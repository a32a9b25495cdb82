import { integer, pgTable, primaryKey, timestamp, varchar } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * Platform-token revocations: the current generation of each (organization, plugin key) pair that was ever
 * revoked (disable, uninstall). A token carries the generation it was issued under and is refused once the
 * row holds a higher one, on every node and after restarts. One row per revoked pair; no row = generation 0.
 */
export const platformTokenRevocations = pgTable(
  'platform_token_revocations',
  {
    organizationId: varchar('organization_id', { length: 64 }).notNull(),
    pluginKey: varchar('plugin_key', { length: 64 }).notNull(),
    generation: integer('generation').notNull(),
    revokedAt: ts('revoked_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.pluginKey] })],
);

export const isolationSchema = { platformTokenRevocations };
