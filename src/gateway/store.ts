import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { storableJson } from '../db/storable.js';
import { gatewayExtrasLists, gatewayOrgSettings, gatewayToolLists } from '../db/schema-gateway.js';
import type { ServerExtras, Tool } from '../runtime/ports.js';

/** Largest stored tools/list of one plugin (JSON characters); a larger list is served but not stored. */
const MAX_STORED_LIST_CHARS = 1_000_000;

export interface GatewaySettings {
  unprefixedNames: boolean;
}

/** The gateway's rows: per-org settings and the last known tools/list per (org, plugin version). */
export class GatewayStore {
  constructor(private readonly db: Db) {}

  async settings(organizationId: string): Promise<GatewaySettings> {
    const [row] = await this.db
      .select()
      .from(gatewayOrgSettings)
      .where(eq(gatewayOrgSettings.organizationId, organizationId));
    return { unprefixedNames: row?.unprefixedNames ?? false };
  }

  async setSettings(organizationId: string, settings: GatewaySettings): Promise<void> {
    const now = new Date();
    await this.db
      .insert(gatewayOrgSettings)
      .values({ organizationId, unprefixedNames: settings.unprefixedNames, updatedAt: now })
      .onConflictDoUpdate({
        target: gatewayOrgSettings.organizationId,
        set: { unprefixedNames: settings.unprefixedNames, updatedAt: now },
      });
  }

  /** Last known tools of every plugin of the org: pluginKey -> { checksum, tools }. */
  async toolLists(organizationId: string): Promise<Map<string, { checksum: string; tools: Tool[] }>> {
    const rows = await this.db
      .select()
      .from(gatewayToolLists)
      .where(eq(gatewayToolLists.organizationId, organizationId));
    return new Map(rows.map((r) => [r.pluginKey, { checksum: r.checksum, tools: r.tools }]));
  }

  /**
   * Stores the tools/list of (org, plugin version); one row per (org, plugin), the newest version wins. NUL
   * and unpaired surrogates are stored as U+FFFD.
   */
  async saveToolList(organizationId: string, pluginKey: string, checksum: string, listed: Tool[]) {
    if (JSON.stringify(listed).length > MAX_STORED_LIST_CHARS) return;
    // a plugin's text may hold NUL or an unpaired surrogate, which jsonb refuses
    const tools = storableJson(listed);
    const now = new Date();
    await this.db
      .insert(gatewayToolLists)
      .values({ organizationId, pluginKey, checksum, tools, updatedAt: now })
      .onConflictDoUpdate({
        target: [gatewayToolLists.organizationId, gatewayToolLists.pluginKey],
        set: { checksum, tools, updatedAt: now },
      });
  }

  /** Last known resources, templates and prompts of every plugin of the org: pluginKey -> { checksum, extras }. */
  async extrasLists(
    organizationId: string,
  ): Promise<Map<string, { checksum: string; extras: ServerExtras }>> {
    const rows = await this.db
      .select()
      .from(gatewayExtrasLists)
      .where(eq(gatewayExtrasLists.organizationId, organizationId));
    return new Map(
      rows.map((r) => [r.pluginKey, { checksum: r.checksum, extras: r.extras as ServerExtras }]),
    );
  }

  /** Stores the extras of (org, plugin version); one row per (org, plugin), the newest version wins. */
  async saveExtras(organizationId: string, pluginKey: string, checksum: string, listed: ServerExtras) {
    if (JSON.stringify(listed).length > MAX_STORED_LIST_CHARS) return;
    const extras = storableJson(listed);
    const now = new Date();
    await this.db
      .insert(gatewayExtrasLists)
      .values({ organizationId, pluginKey, checksum, extras, updatedAt: now })
      .onConflictDoUpdate({
        target: [gatewayExtrasLists.organizationId, gatewayExtrasLists.pluginKey],
        set: { checksum, extras, updatedAt: now },
      });
  }

  async forgetToolList(organizationId: string, pluginKey: string): Promise<void> {
    await this.db
      .delete(gatewayToolLists)
      .where(
        and(eq(gatewayToolLists.organizationId, organizationId), eq(gatewayToolLists.pluginKey, pluginKey)),
      );
  }
}
