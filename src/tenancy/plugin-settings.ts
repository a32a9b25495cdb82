import { EventEmitter } from 'node:events';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { pluginInstances } from '../db/schema.js';
import type { ConfigField } from '../manifest/types.js';
import type { PluginConfigValues } from '../runtime/ports.js';
import {
  applyConfigurationUpdate,
  maskConfiguration,
  openConfiguration,
} from '../security/config-secrets.js';
import type { SecretBox } from '../security/secret-box.js';

export interface PluginSettings {
  enabled: boolean;
  /** API-safe view: secrets masked as `{ set: boolean }`. */
  configuration: Record<string, unknown>;
  lastActivityAt: string | null;
}

export interface SettingsEvents {
  /** Enabled flag or configuration changed for (org, plugin). */
  changed: [event: { organizationId: string; pluginKey: string; enabled: boolean; fields: string[] }];
}

type Schema = Record<string, ConfigField>;

/** Rows per bulk statement (flags, activity): ≤ 3 parameters each, far below PostgreSQL's 65,535. */
const ROWS_PER_STATEMENT = 500;

/**
 * Per-organization enablement and configuration of plugins (`plugin_instances`). Configuration is
 * validated against the manifest's configSchema; `encrypted` fields are sealed with the SecretBox and
 * only ever leave this service decrypted through `runtimeValues` (for the plugin's own process).
 */
export class PluginSettingsService extends EventEmitter<SettingsEvents> {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {
    super();
  }

  async get(organizationId: string, pluginKey: string, schema: Schema): Promise<PluginSettings> {
    const row = await this.row(organizationId, pluginKey);
    return {
      enabled: row?.enabled ?? false,
      configuration: maskConfiguration(schema, row?.configuration ?? {}),
      lastActivityAt: row?.lastActivityAt ? row.lastActivityAt.toISOString() : null,
    };
  }

  /** Enabled flags of many plugins for one org, in one query. */
  async enabledMap(organizationId: string, pluginKeys: readonly string[]): Promise<Map<string, boolean>> {
    if (pluginKeys.length === 0) return new Map();
    const rows = await this.db
      .select({ key: pluginInstances.pluginRegistryId, enabled: pluginInstances.enabled })
      .from(pluginInstances)
      .where(
        and(
          eq(pluginInstances.organizationId, organizationId),
          inArray(pluginInstances.pluginRegistryId, [...pluginKeys]),
        ),
      );
    return new Map(rows.map((r) => [r.key, r.enabled]));
  }

  async isEnabled(organizationId: string, pluginKey: string): Promise<boolean> {
    // the flag alone: the row's configuration (up to 64 KB of jsonb) stays in the database
    const [row] = await this.db
      .select({ enabled: pluginInstances.enabled })
      .from(pluginInstances)
      .where(
        and(
          eq(pluginInstances.organizationId, organizationId),
          eq(pluginInstances.pluginRegistryId, pluginKey),
        ),
      );
    return row?.enabled ?? false;
  }

  /**
   * Enables with a full configuration (validated, defaults applied; omitted secrets keep their stored
   * value). Returns the names of fields that changed. Throws ValidationError naming the field.
   */
  async enable(
    organizationId: string,
    pluginKey: string,
    schema: Schema,
    input: Record<string, unknown>,
  ): Promise<string[]> {
    return this.write(organizationId, pluginKey, schema, input, true);
  }

  async configure(
    organizationId: string,
    pluginKey: string,
    schema: Schema,
    input: Record<string, unknown>,
  ): Promise<string[]> {
    const row = await this.row(organizationId, pluginKey);
    return this.write(organizationId, pluginKey, schema, input, row?.enabled ?? false);
  }

  async disable(organizationId: string, pluginKey: string): Promise<boolean> {
    const [row] = await this.db
      .update(pluginInstances)
      .set({ enabled: false, updatedAt: new Date() })
      .where(
        and(
          eq(pluginInstances.organizationId, organizationId),
          eq(pluginInstances.pluginRegistryId, pluginKey),
        ),
      )
      .returning();
    if (row) this.emit('changed', { organizationId, pluginKey, enabled: false, fields: [] });
    return row !== undefined;
  }

  /** Decrypted values with defaults: for building the plugin process environment only. */
  async runtimeValues(
    organizationId: string,
    pluginKey: string,
    schema: Schema,
  ): Promise<PluginConfigValues> {
    const row = await this.row(organizationId, pluginKey);
    return openConfiguration(schema, row?.configuration ?? {}, this.box);
  }

  /**
   * Enabled flags of many (organization, plugin) pairs, in order, ROWS_PER_STATEMENT pairs per
   * query (a pair without a row is not enabled).
   */
  async enabledFlags(pairs: readonly { organizationId: string; pluginKey: string }[]): Promise<boolean[]> {
    const enabled = new Set<string>();
    for (let i = 0; i < pairs.length; i += ROWS_PER_STATEMENT) {
      const rows = pairs
        .slice(i, i + ROWS_PER_STATEMENT)
        .map((e) => sql`(${e.organizationId}::uuid, ${e.pluginKey}::uuid)`);
      const found = await this.db
        .select({ org: pluginInstances.organizationId, plugin: pluginInstances.pluginRegistryId })
        .from(pluginInstances)
        .where(
          and(
            eq(pluginInstances.enabled, true),
            // a semi-join on a VALUES list: PGlite hangs planning `(a, b) in ((..), ..)` with hundreds of rows
            sql`(${pluginInstances.organizationId}, ${pluginInstances.pluginRegistryId}) in (select v.org, v.plugin from (values ${sql.join(rows, sql`, `)}) as v(org, plugin))`,
          ),
        );
      for (const r of found) enabled.add(`${r.org}\u0000${r.plugin}`);
    }
    return pairs.map((e) => enabled.has(`${e.organizationId}\u0000${e.pluginKey}`));
  }

  /**
   * Writes last-activity times, ROWS_PER_STATEMENT rows per UPDATE (one statement per chunk, not
   * per row: a flush after traffic from a thousand organizations is two statements). A time never moves
   * a row's stored time backwards. Rows that do not exist are skipped.
   */
  async recordActivity(entries: readonly { orgId: string; pluginKey: string; at: Date }[]): Promise<void> {
    for (let i = 0; i < entries.length; i += ROWS_PER_STATEMENT) {
      const rows = entries
        .slice(i, i + ROWS_PER_STATEMENT)
        .map((e) => sql`(${e.orgId}::uuid, ${e.pluginKey}::uuid, ${e.at.toISOString()}::timestamptz)`);
      await this.db.execute(sql`
        update ${pluginInstances} as p set last_activity_at = v.at
        from (values ${sql.join(rows, sql`, `)}) as v(org, plugin, at)
        where p.organization_id = v.org and p.plugin_registry_id = v.plugin
          and (p.last_activity_at is null or p.last_activity_at < v.at)`);
    }
  }

  /** Every stored configuration, for key rotation. */
  async allStored(): Promise<{ id: string; configuration: Record<string, unknown> }[]> {
    return this.db
      .select({ id: pluginInstances.id, configuration: pluginInstances.configuration })
      .from(pluginInstances);
  }

  async replaceStored(id: string, configuration: Record<string, unknown>): Promise<void> {
    await this.db.update(pluginInstances).set({ configuration }).where(eq(pluginInstances.id, id));
  }

  /** The stored (sealed) configuration of one row, for key rotation. */
  async storedById(id: string): Promise<Record<string, unknown> | undefined> {
    const [row] = await this.db
      .select({ configuration: pluginInstances.configuration })
      .from(pluginInstances)
      .where(eq(pluginInstances.id, id));
    return row?.configuration;
  }

  /**
   * Compare-and-swap for key rotation: writes `next` only where the row still holds `expected` (jsonb
   * equality, one UPDATE statement, atomic on PGlite and PostgreSQL). True when the row was written.
   */
  async replaceStoredIf(
    id: string,
    expected: Record<string, unknown>,
    next: Record<string, unknown>,
  ): Promise<boolean> {
    const rows = await this.db
      .update(pluginInstances)
      .set({ configuration: next })
      .where(
        and(
          eq(pluginInstances.id, id),
          sql`${pluginInstances.configuration} = ${JSON.stringify(expected)}::jsonb`,
        ),
      )
      .returning({ id: pluginInstances.id });
    return rows.length > 0;
  }

  private async write(
    organizationId: string,
    pluginKey: string,
    schema: Schema,
    input: Record<string, unknown>,
    enabled: boolean,
  ): Promise<string[]> {
    const before = await this.row(organizationId, pluginKey);
    const { stored: configuration, changed: fields } = applyConfigurationUpdate(
      schema,
      input,
      before?.configuration,
      this.box,
    );
    const now = new Date();
    await this.db
      .insert(pluginInstances)
      .values({ organizationId, pluginRegistryId: pluginKey, enabled, configuration, updatedAt: now })
      .onConflictDoUpdate({
        target: [pluginInstances.organizationId, pluginInstances.pluginRegistryId],
        set: { enabled, configuration, updatedAt: now },
      });
    if (!before || before.enabled !== enabled || fields.length > 0)
      this.emit('changed', { organizationId, pluginKey, enabled, fields });
    return fields;
  }

  private async row(organizationId: string, pluginKey: string) {
    const [row] = await this.db
      .select()
      .from(pluginInstances)
      .where(
        and(
          eq(pluginInstances.organizationId, organizationId),
          eq(pluginInstances.pluginRegistryId, pluginKey),
        ),
      );
    return row;
  }
}
