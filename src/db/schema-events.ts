import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';
import { ts } from './columns.js';

// no import of schema.ts (it spreads this file's tables): organization ids are not foreign keys here

/**
 * Accepted events, one row per publish (or inbound request). `(organization_id, source, idempotency_key)`
 * is unique: a second publish with the same key returns the first event and creates no deliveries.
 */
export const events = pgTable(
  'events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    organizationId: uuid('organization_id').notNull(),
    type: varchar('type', { length: 200 }).notNull(),
    /** `plugin:<id>`, `route:<pluginId>`, `key:<prefix>`. */
    source: varchar('source', { length: 300 }).notNull(),
    payload: jsonb('payload').$type<unknown>().notNull(),
    idempotencyKey: varchar('idempotency_key', { length: 200 }),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('events_idempotency_uq')
      .on(t.organizationId, t.source, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
    index('events_org_idx').on(t.organizationId, t.createdAt),
  ],
);

/**
 * The outbox: one row per (event, target). State columns follow src/events/delivery-state.ts; a worker
 * holds a row only while `status = 'delivering'` and `locked_until` is in the future, under `lease_id`.
 */
export const eventDeliveries = pgTable(
  'event_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Claim order and the order of ordered deliveries. */
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    organizationId: uuid('organization_id').notNull(),
    eventId: uuid('event_id')
      .notNull()
      .references(() => events.id, { onDelete: 'cascade' }),
    targetKind: varchar('target_kind', { length: 16 }).notNull().$type<'plugin' | 'webhook'>(),
    /** Plugin id (with the org it is unique) or webhook endpoint id. */
    target: varchar('target', { length: 255 }).notNull(),
    /** Handler tool for plugin targets. */
    handler: varchar('handler', { length: 128 }),
    /** Set for ordered subscriptions: deliveries sharing it are delivered one at a time in `seq` order. */
    orderingKey: varchar('ordering_key', { length: 400 }),
    status: varchar('status', { length: 16 })
      .notNull()
      .$type<'pending' | 'delivering' | 'delivered' | 'dead'>(),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
    lockedUntil: ts('locked_until'),
    leaseId: uuid('lease_id'),
    lastError: text('last_error'),
    deliveredAt: ts('delivered_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('event_deliveries_due_idx').on(t.status, t.nextAttemptAt),
    index('event_deliveries_order_idx').on(t.orderingKey, t.seq),
    index('event_deliveries_org_idx').on(t.organizationId, t.seq),
    uniqueIndex('event_deliveries_target_uq').on(t.eventId, t.targetKind, t.target),
  ],
);

/** Outbound webhook endpoints of an organization. Secrets are SecretBox strings. */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    organizationId: uuid('organization_id').notNull(),
    url: varchar('url', { length: 2000 }).notNull(),
    description: varchar('description', { length: 500 }),
    eventTypes: jsonb('event_types').$type<string[]>().notNull(),
    ordered: boolean('ordered').notNull().default(false),
    secret: text('secret').notNull(),
    /** The secret before the last rotation; deliveries carry a second signature with it until expiry. */
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: ts('previous_secret_expires_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('webhook_endpoints_org_idx').on(t.organizationId)],
);

/** Host-generated verification secrets of inbound plugin routes, per (org, plugin, route). */
export const inboundRouteSecrets = pgTable(
  'inbound_route_secrets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    organizationId: uuid('organization_id').notNull(),
    pluginId: varchar('plugin_id', { length: 255 }).notNull(),
    /** `<METHOD> <path>` of the manifest route. */
    route: varchar('route', { length: 520 }).notNull(),
    secret: text('secret').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('inbound_route_secrets_uq').on(t.organizationId, t.pluginId, t.route)],
);

export const eventsSchema = { events, eventDeliveries, webhookEndpoints, inboundRouteSecrets };
export type EventDeliveryRow = typeof eventDeliveries.$inferSelect;
export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
