import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RegisteredPlugin } from '../registry/plugin-registry.js';
import type { UploadResult } from '../registry/uploads.js';
import type { CatalogSource, LoadedEntry } from './catalog-source.js';
import {
  defaultPluginId,
  ORIGIN_FILE,
  type CatalogConfigField,
  type CatalogInstallType,
  type CatalogOrigin,
} from './entry-plan.js';

/** One catalog entry as `plugins.catalog` lists it for an organization. */
export interface CatalogEntry {
  /** The server.json `name` (reverse DNS, e.g. `io.github.modelcontextprotocol/server-memory`): the entry's id. */
  name: string;
  title: string;
  description: string;
  version: string;
  websiteUrl: string | null;
  repositoryUrl: string | null;
  /** First icon's https URL. */
  icon: string | null;
  category: string | null;
  tags: string[];
  /** Ways it can be installed, preferred first: `remote` (runs no tenant code) before `local` (npm + stdio). */
  types: CatalogInstallType[];
  /** local: the pinned npm package. */
  package: { identifier: string; version: string } | null;
  /** remote: the server URL. */
  remoteUrl: string | null;
  /** Fields of the preferred type the organization configures at enable (secrets stored encrypted). */
  configFields: CatalogConfigField[];
  /** The plugin id `installFromCatalog` uses unless told otherwise. */
  pluginId: string;
  /** This organization has a plugin installed from this entry. */
  installed: boolean;
  /** The installed plugin's id and the entry version it was installed from, when installed. */
  installedPluginId: string | null;
  installedVersion: string | null;
  source: 'bundled' | 'file' | 'url';
}

export interface CatalogQuery {
  /** Case-insensitive words matched against name, title, description and tags (every word must match). */
  query?: string | undefined;
  type?: CatalogInstallType | undefined;
  category?: string | undefined;
  tag?: string | undefined;
  installed?: boolean | undefined;
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor?: string | undefined;
  limit: number;
}

export interface CatalogPage {
  entries: CatalogEntry[];
  /** Entries matching the filters, all pages together. */
  total: number;
  nextCursor: string | null;
  /** Entries of the catalog documents that were invalid or not installable (details in the host log). */
  skipped: number;
}

export interface CatalogInstallRequest {
  name: string;
  /** Default: the entry's preferred type (remote when it has one). */
  type?: CatalogInstallType | undefined;
  pluginId?: string | undefined;
  /** local only: hosts the server may reach (permissions.network.hosts); default none. */
  networkHosts?: readonly string[] | undefined;
}

export interface CatalogInstallResult {
  pluginId: string;
  version: string;
  type: CatalogInstallType;
  /** The plugin existed and was replaced (the previous version is kept for plugins.rollback). */
  replaced: boolean;
  configFields: CatalogConfigField[];
}

export interface CatalogServiceDeps {
  logger: Logger;
  source: CatalogSource;
  registry: { list(orgId: string | null): RegisteredPlugin[] };
  uploads: {
    installFiles(
      orgId: string,
      actor: string,
      files: Readonly<Record<string, string>>,
      options: { action: 'plugin.catalog-install'; details: Record<string, unknown> },
    ): Promise<UploadResult>;
  };
  /** Throws SANDBOX_UNAVAILABLE when tenant code may not run on this host. */
  assertTenantAllowed(pluginId: string): void;
  /** Throws EGRESS_DENIED when the URL is not one tenant traffic may reach. */
  checkRemoteUrl(orgId: string, url: string): Promise<void>;
}

/**
 * The marketplace catalog (MCP Registry server.json entries) for one organization: list with search,
 * filters and paging, each entry marked installed or not; install an entry as a custom plugin of that
 * organization. A local (npm) entry is refused up front where tenant code may not run (no sandbox); a
 * remote entry's URL must pass the egress policy. The plugin folder is generated and committed through the
 * upload path (same validation, swap, rescan and audit as a ZIP upload).
 */
export class CatalogService {
  constructor(private readonly d: CatalogServiceDeps) {}

  async list(orgId: string, q: CatalogQuery): Promise<CatalogPage> {
    const { entries, skipped } = await this.d.source.entries();
    const origins = await this.origins(orgId);
    const words = (q.query ?? '').toLowerCase().split(/\s+/).filter(Boolean);
    const matched = entries
      .map((e) => this.view(e, origins))
      .filter((e) => {
        if (q.type && !e.types.includes(q.type)) return false;
        if (q.category && e.category?.toLowerCase() !== q.category.toLowerCase()) return false;
        if (q.tag && !e.tags.some((t) => t.toLowerCase() === q.tag?.toLowerCase())) return false;
        if (q.installed !== undefined && e.installed !== q.installed) return false;
        if (words.length === 0) return true;
        const hay = `${e.name} ${e.title} ${e.description} ${e.tags.join(' ')}`.toLowerCase();
        return words.every((w) => hay.includes(w));
      });
    const start = decodeCursor(q.cursor);
    const page = matched.slice(start, start + q.limit);
    const next = start + q.limit < matched.length ? encodeCursor(start + q.limit) : null;
    return { entries: page, total: matched.length, nextCursor: next, skipped };
  }

  async install(orgId: string, actor: string, req: CatalogInstallRequest): Promise<CatalogInstallResult> {
    const { entries } = await this.d.source.entries();
    const entry = entries.find((e) => e.server.name === req.name);
    if (!entry) throw new NotFoundError('CATALOG_ENTRY_NOT_FOUND', `no catalog entry named "${req.name}"`);
    const variant = req.type ? entry.variants.find((v) => v.type === req.type) : entry.variants[0];
    if (!variant)
      throw new ValidationError(
        'INPUT_INVALID',
        `catalog entry "${req.name}" cannot be installed as ${req.type ?? 'anything'}; it offers ${entry.variants.map((v) => v.type).join(', ')}`,
      );
    const pluginId = req.pluginId ?? defaultPluginId(entry.server.name);
    if (variant.type === 'local') this.d.assertTenantAllowed(pluginId);
    else if (variant.url !== undefined) await this.d.checkRemoteUrl(orgId, variant.url);
    if (variant.type === 'remote' && (req.networkHosts?.length ?? 0) > 0)
      throw new ValidationError('INPUT_INVALID', 'networkHosts applies to local (npm) entries only');
    const files = variant.files(pluginId, { networkHosts: req.networkHosts ?? [], source: entry.source });
    const result = await this.d.uploads.installFiles(orgId, actor, files, {
      action: 'plugin.catalog-install',
      details: {
        source: 'catalog',
        entry: entry.server.name,
        entryVersion: entry.server.version,
        type: variant.type,
        ...(variant.package ? { package: `${variant.package.identifier}@${variant.package.version}` } : {}),
      },
    });
    this.d.logger.info(
      { orgId, pluginId: result.pluginId, entry: entry.server.name, type: variant.type },
      'catalog entry installed',
    );
    return {
      pluginId: result.pluginId,
      version: result.version,
      type: variant.type,
      replaced: result.replaced,
      configFields: variant.configFields,
    };
  }

  private view(e: LoadedEntry, origins: Map<string, { pluginId: string; version: string }>): CatalogEntry {
    const s = e.server;
    const meta = s._meta?.['chat.hay/marketplace'];
    const first = e.variants[0];
    const local = e.variants.find((v) => v.type === 'local');
    const remote = e.variants.find((v) => v.type === 'remote');
    const origin = origins.get(s.name);
    return {
      name: s.name,
      title: s.title ?? s.name.slice(s.name.indexOf('/') + 1),
      description: s.description,
      version: s.version,
      websiteUrl: s.websiteUrl ?? null,
      repositoryUrl: s.repository?.url ?? null,
      icon: s.icons?.[0]?.src ?? null,
      category: meta?.category ?? null,
      tags: [...new Set(meta?.tags ?? [])],
      types: e.variants.map((v) => v.type),
      package: local?.package ?? null,
      remoteUrl: remote?.url ?? null,
      configFields: first?.configFields ?? [],
      pluginId: defaultPluginId(s.name),
      installed: origin !== undefined,
      installedPluginId: origin?.pluginId ?? null,
      installedVersion: origin?.version ?? null,
      source: e.source,
    };
  }

  /** Catalog entry name -> the organization's plugin installed from it (read from its ORIGIN_FILE). */
  private async origins(orgId: string): Promise<Map<string, { pluginId: string; version: string }>> {
    const out = new Map<string, { pluginId: string; version: string }>();
    const own = this.d.registry
      .list(orgId)
      .filter((p) => p.sourceType === 'custom' && p.organizationId === orgId && p.status !== 'missing');
    await Promise.all(
      own.map(async (p) => {
        try {
          const file = path.join(p.dir, ORIGIN_FILE);
          // the folder is tenant-writable (install steps): never follow a link out of it
          if (!(await lstat(file)).isFile()) return;
          const text = await readFile(file, 'utf8');
          if (text.length > 10_000) return;
          const o = JSON.parse(text) as Partial<CatalogOrigin>;
          if (typeof o.name === 'string' && typeof o.version === 'string')
            out.set(o.name, { pluginId: p.pluginId, version: o.version });
        } catch {
          // not installed from the catalog
        }
      }),
    );
    return out;
  }
}

function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const m = /^o:(\d{1,7})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new ValidationError('INPUT_INVALID', 'cursor is not one this host returned');
  return Number(m[1]);
}
