import { sql } from 'drizzle-orm';
import {
  bigserial,
  doublePrecision,
  index,
  integer,
  json,
  pgTable,
  text,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';
import type { HayPluginManifest } from '../manifest/types.js';
import { ts } from './columns.js';

/**
 * Call rollups: one row per (organization, plugin, version, tool, hour). Writers upsert by adding their
 * counts, so several host nodes can flush into the same row. `latencyBuckets` counts calls per latency
 * bucket (bounds in src/analytics/histogram.ts), so percentiles of merged rows stay computable.
 */
export const usageRollups = pgTable(
  'usage_rollups',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    organizationId: uuid('organization_id').notNull(),
    pluginId: varchar('plugin_id', { length: 255 }).notNull(),
    version: varchar('version', { length: 64 }).notNull(),
    tool: varchar('tool', { length: 128 }).notNull(),
    hour: ts('hour').notNull(),
    calls: integer('calls').notNull().default(0),
    cacheHits: integer('cache_hits').notNull().default(0),
    toolErrors: integer('tool_errors').notNull().default(0),
    timeouts: integer('timeouts').notNull().default(0),
    rateLimited: integer('rate_limited').notNull().default(0),
    capacity: integer('capacity').notNull().default(0),
    invalid: integer('invalid').notNull().default(0),
    otherErrors: integer('other_errors').notNull().default(0),
    latencyMsSum: doublePrecision('latency_ms_sum').notNull().default(0),
    latencyBuckets: integer('latency_buckets').array().notNull(),
  },
  (t) => [
    uniqueIndex('usage_rollups_key_uq').on(t.organizationId, t.pluginId, t.version, t.tool, t.hour),
    index('usage_rollups_hour_idx').on(t.hour),
  ],
);

/**
 * Every installed version of a plugin (by registry key and checksum). `filesDir` is the kept copy under
 * the data dir, from which instances of that version run.
 */
export const pluginVersions = pgTable(
  'plugin_versions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    pluginKey: uuid('plugin_key').notNull(),
    pluginId: varchar('plugin_id', { length: 255 }).notNull(),
    version: varchar('version', { length: 64 }).notNull(),
    checksum: varchar('checksum', { length: 64 }).notNull(),
    manifest: json('manifest').$type<HayPluginManifest>().notNull(),
    filesDir: varchar('files_dir', { length: 1000 }).notNull(),
    state: varchar('state', { length: 20 }).notNull().$type<'staging' | 'ready' | 'failed' | 'pruned'>(),
    error: text('error'),
    createdAt: ts('created_at').notNull().defaultNow(),
    readyAt: ts('ready_at'),
  },
  (t) => [
    uniqueIndex('plugin_versions_key_checksum_uq').on(t.pluginKey, t.checksum),
    index('plugin_versions_key_idx').on(t.pluginKey),
  ],
);

/**
 * An organization pinned to one kept version of a plugin; `organizationId` null pins every organization
 * without a pin of its own (a rollback for all). No row: the latest ready version.
 */
export const pluginVersionPins = pgTable(
  'plugin_version_pins',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    organizationId: uuid('organization_id'),
    pluginKey: uuid('plugin_key').notNull(),
    versionId: uuid('version_id').notNull(),
    pinnedBy: varchar('pinned_by', { length: 100 }).notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('plugin_version_pins_org_uq')
      .on(t.organizationId, t.pluginKey)
      .where(sql`${t.organizationId} is not null`),
    uniqueIndex('plugin_version_pins_all_uq')
      .on(t.pluginKey)
      .where(sql`${t.organizationId} is null`),
  ],
);

/**
 * A canary: `versionId` for `percent` % of organizations (scope 'orgs', sticky by hash of the org id)
 * or, within `organizationId`, for `percent` % of subject ids (scope 'subjects'). One active rollout per
 * plugin key.
 */
export const pluginRollouts = pgTable(
  'plugin_rollouts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    pluginKey: uuid('plugin_key').notNull(),
    versionId: uuid('version_id').notNull(),
    scope: varchar('scope', { length: 16 }).notNull().$type<'orgs' | 'subjects'>(),
    organizationId: uuid('organization_id'),
    percent: doublePrecision('percent').notNull(),
    state: varchar('state', { length: 16 })
      .notNull()
      .$type<'active' | 'promoted' | 'aborted' | 'rolled_back'>(),
    /** Automatic rollback when the canary's error rate over `windowMinutes` exceeds this fraction. */
    maxErrorRate: doublePrecision('max_error_rate'),
    minCalls: integer('min_calls').notNull().default(20),
    windowMinutes: integer('window_minutes').notNull().default(15),
    reason: text('reason'),
    createdBy: varchar('created_by', { length: 100 }).notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('plugin_rollouts_key_idx').on(t.pluginKey, t.state)],
);

export const lifecycleSchema = { usageRollups, pluginVersions, pluginVersionPins, pluginRollouts };
export type PluginVersionRow = typeof pluginVersions.$inferSelect;
export type PluginRolloutRow = typeof pluginRollouts.$inferSelect;
