import { UriTemplate } from '@modelcontextprotocol/server';
import type { Counter } from 'prom-client';
import type { Caller, CatalogPlugin, PluginService } from '../invocation/plugin-service.js';
import { canonicalJson } from '../invocation/tool-cache.js';
import { storableJsonText } from '../db/storable.js';
import type { Logger } from '../logger.js';
import { mapLimit } from '../registry/discovery.js';
import type { Prompt, Resource, ResourceTemplate, ServerExtras, Tool } from '../runtime/ports.js';
import { scopeAllows } from '../security/key-scopes.js';
import { buildNameTable, exposedUri, MAX_RESOURCE_URI_CHARS, type NameTable } from './naming.js';
import type { GatewaySettings, GatewayStore } from './store.js';

/** Upper bound on tools one organization exposes through /mcp (the rest is left out with a log line). */
export const MAX_CATALOG_TOOLS = 5_000;

/** Upper bound on resources + resource templates + prompts one organization exposes through /mcp. */
export const MAX_CATALOG_EXTRAS = 5_000;

export interface CatalogExtras {
  pluginId: string;
  pluginKey: string;
  extras: ServerExtras;
}

/** What one caller sees of resources and prompts: exposed URIs and names, and the way back. */
export interface CallerExtras {
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
  /** Exposed prompt name -> the plugin and its own prompt name. */
  resolvePrompt(exposed: string): { pluginId: string; name: string } | undefined;
  /**
   * The plugin that listed `uri` as its own (unprefixed) resource URI, e.g. a resource_link in a tool
   * result, else whose own resource template matches it (a URI made from a template is listed by none):
   * 'ambiguous' when several visible plugins list it (or, none listing it, match it), undefined when none.
   */
  ownerOfOwnUri(uri: string): string | 'ambiguous' | undefined;
  /** The same for a resource template's own (unprefixed) URI template. */
  ownerOfOwnTemplate(uriTemplate: string): string | 'ambiguous' | undefined;
}

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

/** One organization's memoized catalog (see GatewayDeps.options.memoMs). */
interface MemoEntry {
  until: number;
  entries: Promise<CatalogTool[]>;
  settings: Promise<GatewaySettings>;
  /** Built views by key scopes (JSON), for the memo's lifetime. */
  views: Map<string, Promise<CallerCatalog>>;
  /** Resources and prompts, loaded on the first listing that needs them. */
  extras?: Promise<CatalogExtras[]>;
  extrasViews: Map<string, Promise<CallerExtras>>;
}

/**
 * The tools an organization exposes through /mcp, without starting plugins to list them: per enabled
 * plugin, the running instance's tools/list, else the stored last tools/list of that plugin version,
 * else the manifest's declared tools; only a plugin with none of these is started (bounded by
 * listTimeoutMs). A plugin that fails is left out (log line + metric) and never fails the listing.
 */
export class GatewayCatalog {
  private readonly memo = new Map<string, MemoEntry>();

  constructor(private readonly d: GatewayCatalogDeps) {}

  /** Drops the memo of one organization (or all); the next listing rebuilds it. */
  invalidate(orgId?: string): void {
    if (orgId === undefined) this.memo.clear();
    else this.memo.delete(orgId);
  }

  /** The caller's view (its key scopes applied, names built); memoized with the organization's catalog. */
  forCaller(caller: Caller): Promise<CallerCatalog> {
    const memo = this.memoFor(caller.organizationId);
    const key = caller.scopes ? JSON.stringify(caller.scopes) : '';
    let view = memo.views.get(key);
    if (!view) {
      view = Promise.all([memo.entries, memo.settings]).then(([entries, settings]) =>
        buildView(caller, entries, settings),
      );
      if (memo.views.size < 1_000) memo.views.set(key, view);
    }
    return view;
  }

  /**
   * The caller's resources, resource templates and prompts: per enabled plugin, the running instance's
   * lists, else the stored last lists of that plugin version, else none (listing never starts a plugin
   * for these; a plugin's first start stores them and announces list_changed). Resources and prompts
   * need a key that reaches the whole plugin (a key restricted to named tools sees none).
   */
  extrasForCaller(caller: Caller): Promise<CallerExtras> {
    const memo = this.memoFor(caller.organizationId);
    memo.extras ??= this.loadExtras(caller.organizationId);
    const key = caller.scopes ? JSON.stringify(caller.scopes) : '';
    let view = memo.extrasViews.get(key);
    if (!view) {
      view = Promise.all([memo.extras, memo.settings]).then(([entries, settings]) =>
        buildExtrasView(caller, entries, settings),
      );
      view.catch(() => {
        if (this.memo.get(caller.organizationId) === memo) this.memo.delete(caller.organizationId);
      });
      if (memo.extrasViews.size < 1_000) memo.extrasViews.set(key, view);
    }
    return view;
  }

  /**
   * Re-reads the running instance's resources and prompts of (org, plugin) and stores them when they
   * differ from the stored lists. Resolves true when the stored lists changed. Starts nothing.
   */
  async refreshExtras(
    orgId: string,
    pluginId: string,
    pluginKey: string,
    checksum: string,
  ): Promise<boolean> {
    const extras = await this.d.plugins.instanceExtras(orgId, pluginId);
    if (!extras) return false;
    const stored = (await this.d.store.extrasLists(orgId)).get(pluginKey);
    if (stored && stored.checksum === checksum && sameAsStored(stored.extras, extras)) return false;
    await this.d.store.saveExtras(orgId, pluginKey, checksum, extras);
    this.invalidate(orgId);
    return true;
  }

  /**
   * Re-reads the running instance's tools of (org, plugin) and stores them when they differ from the
   * stored list. Resolves true when the stored list changed. Starts nothing.
   */
  async refresh(orgId: string, pluginId: string, pluginKey: string, checksum: string): Promise<boolean> {
    const tools = await this.d.plugins.instanceTools(orgId, pluginId, { start: false });
    if (!tools) return false;
    const stored = (await this.d.store.toolLists(orgId)).get(pluginKey);
    if (stored && stored.checksum === checksum && sameAsStored(stored.tools, tools)) return false;
    await this.d.store.saveToolList(orgId, pluginKey, checksum, tools);
    this.invalidate(orgId);
    return true;
  }

  private memoFor(orgId: string): MemoEntry {
    const now = Date.now();
    const hit = this.memo.get(orgId);
    if (hit && hit.until > now) return hit;
    const entry = {
      until: now + this.d.options.memoMs,
      entries: this.load(orgId),
      settings: this.d.store.settings(orgId),
      views: new Map<string, Promise<CallerCatalog>>(),
      extrasViews: new Map<string, Promise<CallerExtras>>(),
    };
    this.memo.set(orgId, entry);
    Promise.all([entry.entries, entry.settings]).catch(() => {
      if (this.memo.get(orgId) === entry) this.memo.delete(orgId);
    });
    return entry;
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

  private async loadExtras(orgId: string): Promise<CatalogExtras[]> {
    const [plugins, stored] = await Promise.all([
      this.d.plugins.catalogPlugins(orgId),
      this.d.store.extrasLists(orgId),
    ]);
    const lists = await mapLimit(plugins, 4, async (p): Promise<ServerExtras | undefined> => {
      const known = stored.get(p.pluginKey);
      try {
        if (p.running) {
          const live = await this.d.plugins.instanceExtras(orgId, p.pluginId);
          if (live) {
            if (!known || known.checksum !== p.checksum || !sameAsStored(known.extras, live))
              await this.d.store.saveExtras(orgId, p.pluginKey, p.checksum, live);
            return live;
          }
        }
        return known && known.checksum === p.checksum ? known.extras : undefined;
      } catch (err) {
        const reason = err instanceof Error && 'code' in err ? String(err.code) : 'error';
        this.d.leftOut.inc({ plugin: p.pluginId, reason });
        this.d.logger.warn(
          { orgId, pluginId: p.pluginId, err: err instanceof Error ? err.message : String(err) },
          'plugin left out of the MCP resource and prompt lists: they could not be read',
        );
        return known && known.checksum === p.checksum ? known.extras : undefined;
      }
    });
    const out: CatalogExtras[] = [];
    let total = 0;
    for (const [i, p] of plugins.entries()) {
      const extras = lists[i];
      if (!extras) continue;
      const size = extras.resources.length + extras.resourceTemplates.length + extras.prompts.length;
      if (total + size > MAX_CATALOG_EXTRAS) {
        this.d.logger.warn(
          { orgId, pluginId: p.pluginId, max: MAX_CATALOG_EXTRAS },
          'MCP resource and prompt catalog is full; further plugins are left out',
        );
        break;
      }
      total += size;
      out.push({ pluginId: p.pluginId, pluginKey: p.pluginKey, extras });
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
          if (!stored || stored.checksum !== p.checksum || !sameAsStored(stored.tools, live))
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

function buildView(caller: Caller, entries: CatalogTool[], settings: GatewaySettings): CallerCatalog {
  const visible = entries.filter((e) => scopeAllows(caller.scopes, e.pluginId, e.tool.name));
  const names = buildNameTable(
    visible.map((e) => ({ pluginId: e.pluginId, tool: e.tool.name })),
    { unprefixed: settings.unprefixedNames },
  );
  // a plugin listing one name twice: the first is listed and called (as plugins.invokeTool finds it)
  const byRef = new Map<string, CatalogTool>();
  for (const e of visible) {
    const key = `${e.pluginId}\u0000${e.tool.name}`;
    if (!byRef.has(key)) byRef.set(key, e);
  }
  const tools: CallerCatalog['tools'] = [];
  const listed = new Set<string>();
  for (const entry of visible) {
    const exposed = names.exposedName({ pluginId: entry.pluginId, tool: entry.tool.name });
    if (exposed === undefined || listed.has(exposed)) continue;
    listed.add(exposed);
    tools.push({ exposed, entry });
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

function buildExtrasView(caller: Caller, entries: CatalogExtras[], settings: GatewaySettings): CallerExtras {
  const visible = entries.filter((e) => !caller.scopes || caller.scopes.plugins?.includes(e.pluginId));
  const resources: Resource[] = [];
  const resourceTemplates: ResourceTemplate[] = [];
  const owners = new Map<string, string | 'ambiguous'>();
  const templateOwners = new Map<string, string | 'ambiguous'>();
  const ownTemplates: { pluginId: string; uriTemplate: string }[] = [];
  for (const e of visible) {
    for (const r of e.extras.resources) {
      const uri = exposedUri(e.pluginId, r.uri);
      if (uri.length > MAX_RESOURCE_URI_CHARS) continue;
      resources.push({ ...r, uri });
      const prior = owners.get(r.uri);
      owners.set(r.uri, prior === undefined || prior === e.pluginId ? e.pluginId : 'ambiguous');
    }
    for (const t of e.extras.resourceTemplates) {
      const uriTemplate = exposedUri(e.pluginId, t.uriTemplate);
      if (uriTemplate.length > MAX_RESOURCE_URI_CHARS) continue;
      resourceTemplates.push({ ...t, uriTemplate });
      ownTemplates.push({ pluginId: e.pluginId, uriTemplate: t.uriTemplate });
      const prior = templateOwners.get(t.uriTemplate);
      templateOwners.set(
        t.uriTemplate,
        prior === undefined || prior === e.pluginId ? e.pluginId : 'ambiguous',
      );
    }
  }
  const promptRefs = visible.flatMap((e) =>
    e.extras.prompts.map((p) => ({ pluginId: e.pluginId, tool: p.name })),
  );
  const names = buildNameTable(promptRefs, { unprefixed: settings.unprefixedNames });
  const prompts: Prompt[] = [];
  for (const e of visible)
    for (const p of e.extras.prompts) {
      const name = names.exposedName({ pluginId: e.pluginId, tool: p.name });
      if (name !== undefined) prompts.push({ ...p, name });
    }
  let matchers: ((uri: string) => string | 'ambiguous' | undefined) | undefined;
  return {
    resources,
    resourceTemplates,
    prompts,
    resolvePrompt: (exposed) => {
      const ref = names.resolve(exposed);
      return ref ? { pluginId: ref.pluginId, name: ref.tool } : undefined;
    },
    ownerOfOwnUri: (uri) => owners.get(uri) ?? (matchers ??= compileTemplates(ownTemplates))(uri),
    ownerOfOwnTemplate: (uriTemplate) => templateOwners.get(uriTemplate),
  };
}

/**
 * The plugin whose own URI template (RFC 6570, the SDK's UriTemplate) matches a URI: 'ambiguous' when
 * templates of two plugins do. A template the SDK refuses (too long, malformed) matches nothing; a URI
 * past MAX_RESOURCE_URI_CHARS is not matched.
 */
export function compileTemplates(
  templates: readonly { pluginId: string; uriTemplate: string }[],
): (uri: string) => string | 'ambiguous' | undefined {
  const compiled: { pluginId: string; template: UriTemplate }[] = [];
  for (const t of templates) {
    try {
      compiled.push({ pluginId: t.pluginId, template: new UriTemplate(t.uriTemplate) });
    } catch {
      // not a template the SDK can match
    }
  }
  return (uri) => {
    if (uri.length > MAX_RESOURCE_URI_CHARS) return undefined;
    let owner: string | undefined;
    for (const c of compiled) {
      let matched: boolean;
      try {
        matched = c.template.match(uri) !== null;
      } catch {
        matched = false;
      }
      if (!matched || owner === c.pluginId) continue;
      if (owner !== undefined) return 'ambiguous';
      owner = c.pluginId;
    }
    return owner;
  };
}

/**
 * Whether `live` (a plugin's list) is what the store holds for it. Key order aside (jsonb keeps its own):
 * compared as canonical JSON; the store keeps the storable form of strings.
 */
function sameAsStored(stored: unknown, live: unknown): boolean {
  return canonicalJson(stored) === storableJsonText(canonicalJson(live));
}
