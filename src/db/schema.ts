import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  index,
  integer,
  json,
  jsonb,
  pgTable,
  text,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';
import type { HayPluginManifest } from '../manifest/types.js';
import { gatewayExtrasLists, gatewayOrgSettings, gatewayToolLists } from './schema-gateway.js';

export { gatewayExtrasLists, gatewayOrgSettings, gatewayToolLists } from './schema-gateway.js';
import { lifecycleSchema } from './schema-lifecycle.js';
import { eventsSchema } from './schema-events.js';
import { authSigningKeys, pluginOauth } from './schema-auth.js';
import { webSessions } from './schema-web-session.js';

export { webSessions };
import { ts } from './columns.js';
import { isolationSchema } from './schema-isolation.js';

export { authSigningKeys, pluginOauth };
export { platformTokenRevocations, pluginVersionArchives } from './schema-isolation.js';

export const organizations = pgTable('organizations', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: varchar('name', { length: 200 }).notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    /** First characters of the key, for lookup and display. */
    prefix: varchar('prefix', { length: 32 }).notNull(),
    /** SHA-256 hex of the whole key; the key itself is never stored. */
    hash: varchar('hash', { length: 64 }).notNull(),
    role: varchar('role', { length: 16 }).notNull().$type<'admin' | 'member'>(),
    createdAt: ts('created_at').notNull().defaultNow(),
    revokedAt: ts('revoked_at'),
    /** Least privilege: null = every plugin of the org; else only these plugins / `<pluginId>/<tool>` tools. */
    scopes: jsonb('scopes').$type<{ plugins?: string[]; tools?: string[] }>(),
  },
  (t) => [uniqueIndex('api_keys_prefix_uq').on(t.prefix), index('api_keys_org_idx').on(t.organizationId)],
);

/**
 * One row per discovered plugin folder scope: core plugin ids are unique among core plugins; a custom
 * plugin id is unique within its organization. Rows are never deleted by discovery: a vanished folder
 * is marked `missing` so org configuration survives.
 */
export const pluginRegistry = pgTable(
  'plugin_registry',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    pluginId: varchar('plugin_id', { length: 255 }).notNull(),
    name: varchar('name', { length: 255 }).notNull(),
    version: varchar('version', { length: 64 }).notNull(),
    /** Relative to the plugins directory, posix separators. */
    pluginPath: varchar('plugin_path', { length: 500 }).notNull(),
    /** json, not jsonb: keeps the manifest's key order (configSchema field order matters to forms). */
    manifest: json('manifest').$type<HayPluginManifest | null>(),
    checksum: varchar('checksum', { length: 64 }).notNull(),
    sourceType: varchar('source_type', { length: 20 }).notNull().$type<'core' | 'custom'>(),
    organizationId: uuid('organization_id'),
    status: varchar('status', { length: 20 }).notNull().$type<'ok' | 'invalid' | 'missing'>(),
    validationError: text('validation_error'),
    installed: boolean('installed').notNull().default(false),
    built: boolean('built').notNull().default(false),
    installError: text('install_error'),
    buildError: text('build_error'),
    zipUploadId: uuid('zip_upload_id'),
    maxConcurrentInstances: integer('max_concurrent_instances').notNull().default(10),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('plugin_registry_core_uq')
      .on(t.pluginId)
      .where(sql`${t.organizationId} is null`),
    uniqueIndex('plugin_registry_custom_uq')
      .on(t.organizationId, t.pluginId)
      .where(sql`${t.organizationId} is not null`),
  ],
);

export const pluginInstances = pgTable(
  'plugin_instances',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    pluginRegistryId: uuid('plugin_registry_id')
      .notNull()
      .references(() => pluginRegistry.id, { onDelete: 'cascade' }),
    enabled: boolean('enabled').notNull().default(false),
    /** Encrypted fields are stored as SecretBox strings. */
    configuration: jsonb('configuration').$type<Record<string, unknown>>().notNull().default({}),
    lastActivityAt: ts('last_activity_at'),
    priority: integer('priority').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('plugin_instances_org_plugin_uq').on(t.organizationId, t.pluginRegistryId)],
);

/** Append-only from the API's point of view. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    organizationId: uuid('organization_id'),
    actor: varchar('actor', { length: 100 }).notNull(),
    action: varchar('action', { length: 64 }).notNull(),
    pluginId: varchar('plugin_id', { length: 255 }),
    outcome: varchar('outcome', { length: 32 }).notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    index('audit_log_org_at_idx').on(t.organizationId, t.id),
    index('audit_log_action_idx').on(t.action),
  ],
);

export const schema = {
  organizations,
  apiKeys,
  pluginRegistry,
  pluginInstances,
  auditLog,
  ...{ gatewayExtrasLists, gatewayOrgSettings, gatewayToolLists },
  ...lifecycleSchema,
  ...eventsSchema,
  authSigningKeys,
  pluginOauth,
  webSessions,
  ...isolationSchema,
};
export type Schema = typeof schema;
export type PluginRegistryRow = typeof pluginRegistry.$inferSelect;
export type PluginInstanceRow = typeof pluginInstances.$inferSelect;
