import { boolean, jsonb, pgTable, primaryKey, uuid, varchar } from 'drizzle-orm/pg-core';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { ts } from './columns.js';

/** Per-organization settings of the MCP endpoint (`/mcp`). No row: the defaults. */
export const gatewayOrgSettings = pgTable('gateway_org_settings', {
  organizationId: uuid('organization_id').primaryKey(),
  /** Expose a tool as `<tool>` instead of `<pluginId>__<tool>` when no other plugin of the org has that name. */
  unprefixedNames: boolean('unprefixed_names').notNull().default(false),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * The last tools/list a plugin version answered for an organization: what `/mcp` lists without starting
 * the plugin. Keyed by the registry row and its checksum, so a new version is never listed from an old one.
 */
export const gatewayToolLists = pgTable(
  'gateway_tool_lists',
  {
    organizationId: uuid('organization_id').notNull(),
    pluginKey: uuid('plugin_key').notNull(),
    checksum: varchar('checksum', { length: 64 }).notNull(),
    tools: jsonb('tools').$type<Tool[]>().notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.pluginKey] })],
);
