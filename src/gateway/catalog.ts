import type { Counter } from 'prom-client';
import type { Caller, CatalogPlugin, PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import { mapLimit } from '../registry/discovery.js';
import type { Tool } from '../runtime/ports.js';
import { scopeAllows } from '../security/key-scopes.js';
import { buildNameTable, type NameTable } from './naming.js';
import type { GatewayStore } from './store.js';

/** Upper bound on tools one organization exposes through /mcp (the rest is left out with a log line). */
export const MAX_CATALOG_TOOLS = 5_000;

export interface CatalogTool {
  pluginId: string;
  pluginKey: string;
  /** The plugin's own tool (its own name). */
  tool: Tool;
}

/** What one caller sees: its tools under their exposed names, and the way back. */
export interface CallerCatalog {
  tools: { exposed: string; entry: CatalogTool }[];
  names: NameTable;
  resolve(exposed: string): CatalogTool | undefined;
}

export interface GatewayCatalogDeps {
  plugins: PluginService;
  store: GatewayStore;
  logger: Logger;
  /** Counts plugins left out of a listing, by plugin and reason. */
  leftOut: Counter<'plugin' | 'reason'>;
  options: {
    /** Bound on a start made to learn a plugin's tools (no cached list, no declared tools). */
    listTimeoutMs: number;
    /** An org's catalog is rebuilt at least this often (other host nodes' changes), and on every event. */
    memoMs: number;
  };
}

/**
 * The tools an organization exposes through /mcp, without starting plugins to list them: per enabled
 * plugin, the running instance's tools/list, else the stored last tools/list of that plugin version,
 * else the manifest's declared tools; only a plugin with none of these is started (bounded by
 * listTimeoutMs). A plugin that fails is left out (log line + metric) and never fails the listing.
 */
export class GatewayCatalog {
  private readonly memo = new Map<string, { until: number; entries: Promise<CatalogTool[]> }>();

  constructor(private readonly d: GatewayCatalogDeps) {}

  /** Drops the memo of one organization (or all); the next listing rebuilds it. */
  invalidate(orgId?: string): void {
    if (orgId === undefined) this.memo.clear();
    else this.memo.delete(orgId);
  }

  async forCaller(caller: Caller): Promise<CallerCatalog> {
    const orgId = caller.organizationId;
    const [entries, settings] = await Promise.all([this.entries(orgId), this.d.store.settings(orgId)]);
    const visible = entries.filter((e) => scopeAllows(caller.scopes, e.pluginId, e.tool.name));
    const names = buildNameTable(
      visible.map((e) => ({ pluginId: e.pluginId, tool: e.tool.name })),
      { unprefixed: settings.unprefixedNames },
    );
    const byRef = new Map(visible.map((e) => [`${e.pluginId}\u0000${e.tool.name}`, e]));
    const tools: CallerCatalog['tools'] = [];
    for (const entry of visible) {
      const exposed = names.exposedName({ pluginId: entry.pluginId, tool: entry.tool.name });
      if (exposed !== undefined) tools.push({ exposed, entry });
    }
    return {
      tools,
      names,
      resolve: (exposed) => {
        const ref = names.resolve(exposed);
        return ref ? byRef.get(`${ref.pluginId}\u0000${ref.tool}`) : undefined;
      },
    };
  }

  /**
   * Re-reads the running instance's tools of (org, plugin) and stores them when they differ from the
   * stored list. Resolves true when the stored list changed. Starts nothing.
   */
  async refresh(orgId: string, pluginId: string, pluginKey: string, checksum: string): Promise<boolean> {
    const tools = await this.d.plugins.instanceTools(orgId, pluginId, { start: false });
    if (!tools) return false;
    const stored = (await this.d.store.toolLists(orgId)).get(pluginKey);
    if (stored && stored.checksum === checksum && sameTools(stored.tools, tools)) return false;
    await this.d.store.saveToolList(orgId, pluginKey, checksum, tools);
    this.invalidate(orgId);
    return true;
  }

  private entries(orgId: string): Promise<CatalogTool[]> {
    const now = Date.now();
    const hit = this.memo.get(orgId);
    if (hit && hit.until > now) return hit.entries;
    const entries = this.load(orgId);
    this.memo.set(orgId, { until: now + this.d.options.memoMs, entries });
    entries.catch(() => this.memo.delete(orgId));
    return entries;
  }

  private async load(orgId: string): Promise<CatalogTool[]> {
    const [plugins, stored] = await Promise.all([
      this.d.plugins.catalogPlugins(orgId),
      this.d.store.toolLists(orgId),
    ]);
    const lists = await mapLimit(plugins, 4, (p) => this.toolsOf(orgId, p, stored.get(p.pluginKey)));
    const out: CatalogTool[] = [];
    for (const [i, p] of plugins.entries()) {
      for (const tool of lists[i] ?? []) {
        if (out.length >= MAX_CATALOG_TOOLS) {
          this.d.logger.warn(
            { orgId, pluginId: p.pluginId, max: MAX_CATALOG_TOOLS },
            'MCP catalog is full; further tools are left out',
          );
          return out;
        }
        out.push({ pluginId: p.pluginId, pluginKey: p.pluginKey, tool });
      }
    }
    return out;
  }

  private async toolsOf(
    orgId: string,
    p: CatalogPlugin,
    stored: { checksum: string; tools: Tool[] } | undefined,
  ): Promise<Tool[]> {
    try {
      if (p.running) {
        const live = await this.d.plugins.instanceTools(orgId, p.pluginId, { start: false });
        if (live) {
          if (!stored || stored.checksum !== p.checksum || !sameTools(stored.tools, live))
            await this.d.store.saveToolList(orgId, p.pluginKey, p.checksum, live);
          return live;
        }
      }
      if (stored && stored.checksum === p.checksum) return stored.tools;
      if (p.declaredTools.length > 0) return p.declaredTools;
      const started = await this.d.plugins.instanceTools(orgId, p.pluginId, {
        start: true,
        timeoutMs: this.d.options.listTimeoutMs,
        signal: AbortSignal.timeout(this.d.options.listTimeoutMs),
      });
      const tools = started ?? [];
      await this.d.store.saveToolList(orgId, p.pluginKey, p.checksum, tools);
      return tools;
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? String(err.code) : 'error';
      this.d.leftOut.inc({ plugin: p.pluginId, reason });
      this.d.logger.warn(
        { orgId, pluginId: p.pluginId, err: err instanceof Error ? err.message : String(err) },
        'plugin left out of the MCP tool list: its tools could not be read',
      );
      return [];
    }
  }
}

function sameTools(a: readonly Tool[], b: readonly Tool[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
