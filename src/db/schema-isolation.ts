import { customType, integer, pgTable, primaryKey, uuid, varchar } from 'drizzle-orm/pg-core';
import { ts } from './columns.js';

/** bytea as a Buffer on both drivers (pg gives a Buffer, PGlite a Uint8Array). */
const bytea = customType<{ data: Buffer; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => Buffer.from(v),
});

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

/**
 * The files of a kept plugin version (`plugin_versions`), packed (src/lifecycle/version-archive.ts), so a
 * node without its own copy can materialize it. At most HAY_VERSION_ARCHIVE_MAX_BYTES of files per version;
 * a bigger version has no row (each node then stages it from its plugins folder). Removed when pruned.
 */
export const pluginVersionArchives = pgTable('plugin_version_archives', {
  versionId: uuid('version_id').primaryKey(),
  pluginKey: uuid('plugin_key').notNull(),
  checksum: varchar('checksum', { length: 64 }).notNull(),
  bytes: integer('bytes').notNull(),
  archive: bytea('archive').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const isolationSchema = { platformTokenRevocations, pluginVersionArchives };
