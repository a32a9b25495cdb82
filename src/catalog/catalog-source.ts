import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import type { Logger } from '../logger.js';
import { installVariants, type InstallVariant } from './entry-plan.js';
import { documentItems, parseServerDetail, type EntryProblem, type ServerDetail } from './server-json.js';

/** Where an entry was read: the host's bundled catalog, the operator's file/directory, or the URL. */
export type CatalogSourceKind = 'bundled' | 'file' | 'url';

export interface LoadedEntry {
  server: ServerDetail;
  source: CatalogSourceKind;
  variants: InstallVariant[];
}

export interface CatalogSourceOptions {
  logger: Logger;
  /** A JSON file or a directory of `*.json` files (not recursive). */
  localPath: string;
  /** `bundled` when `localPath` is the host's own catalog folder, else `file`. */
  localKind: 'bundled' | 'file';
  /** Optional catalog URL (a server.json document or a registry `/v0.1/servers` list). */
  url: string | undefined;
  /** The egress-guarded fetch the URL is read through (operator allow-list applies). */
  fetch: (url: string, init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<Response>;
  /** Largest catalog document (a local file, or one URL page), in bytes. */
  maxBytes: number;
  /** Bound on reading the URL (all pages together). */
  fetchTimeoutMs: number;
  /** A URL catalog read successfully is reused for this long; a failed read keeps the last good one. */
  cacheTtlMs: number;
  /** Entries kept in all (later ones are skipped and reported). */
  maxEntries: number;
  /** Pages of a registry list followed through `metadata.nextCursor`. */
  maxPages: number;
  /** Host name of the npm registry tenant installs use (entries on other registries are refused). */
  registryHost: string;
}

/**
 * Reads the operator's catalog: local entries (re-read on each call; bounded) and, when configured, the
 * URL (cached for `cacheTtlMs`; concurrent readers share one request). Every entry is validated; a bad
 * entry or document is logged as a problem and skipped, never failing the list. Local entries win over URL
 * entries of the same name; of two versions of one name the registry's `isLatest`, else the higher semver,
 * is kept.
 */
export class CatalogSource {
  private readonly o: CatalogSourceOptions;
  private remote: { at: number; entries: LoadedEntry[]; skipped: number } | undefined;
  private reading: Promise<void> | undefined;
  private readonly reported = new Set<string>();

  constructor(options: CatalogSourceOptions) {
    this.o = options;
  }

  /** Every valid, installable entry, sorted by name, and how many were skipped. */
  async entries(): Promise<{ entries: LoadedEntry[]; skipped: number }> {
    const local = await this.readLocal();
    if (this.o.url !== undefined) await this.refreshRemote();
    const byName = new Map<string, LoadedEntry>();
    let skipped = local.skipped + (this.remote?.skipped ?? 0);
    for (const e of [...(this.remote?.entries ?? []), ...local.entries]) {
      const prev = byName.get(e.server.name);
      if (prev && prev.source !== 'url' && e.source === 'url') continue;
      if (prev && prev.source === e.source && !newer(e.server, prev.server)) continue;
      byName.set(e.server.name, e);
    }
    let entries = [...byName.values()].sort((a, b) => a.server.name.localeCompare(b.server.name));
    if (entries.length > this.o.maxEntries) {
      skipped += entries.length - this.o.maxEntries;
      entries = entries.slice(0, this.o.maxEntries);
    }
    return { entries, skipped };
  }

  private async readLocal(): Promise<{ entries: LoadedEntry[]; skipped: number }> {
    const kind = this.o.localKind;
    let files: string[];
    try {
      const st = await stat(this.o.localPath);
      files = st.isDirectory()
        ? (await readdir(this.o.localPath))
            .filter((f) => f.endsWith('.json'))
            .sort()
            .map((f) => path.join(this.o.localPath, f))
        : [this.o.localPath];
    } catch (err) {
      this.problem({
        source: kind,
        index: -1,
        name: undefined,
        message: `catalog path unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      });
      return { entries: [], skipped: 0 };
    }
    const out: LoadedEntry[] = [];
    let skipped = 0;
    for (const file of files.slice(0, this.o.maxEntries)) {
      const label = `${kind}:${path.basename(file)}`;
      let doc: unknown;
      try {
        const st = await stat(file);
        if (st.size > this.o.maxBytes)
          throw new Error(`${st.size} bytes is over the catalog document limit of ${this.o.maxBytes}`);
        doc = JSON.parse(await readFile(file, 'utf8'));
      } catch (err) {
        this.problem({ source: label, index: -1, name: undefined, message: errorText(err) });
        skipped++;
        continue;
      }
      const r = this.parseDocument(doc, label, kind);
      out.push(...r.entries);
      skipped += r.skipped;
    }
    return { entries: out, skipped };
  }

  private refreshRemote(): Promise<void> {
    if (this.remote && Date.now() - this.remote.at < this.o.cacheTtlMs) return Promise.resolve();
    this.reading ??= this.readRemote().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async readRemote(): Promise<void> {
    const base = this.o.url;
    if (base === undefined) return;
    const signal = AbortSignal.timeout(this.o.fetchTimeoutMs);
    const entries: LoadedEntry[] = [];
    let skipped = 0;
    try {
      let cursor: string | undefined;
      for (let page = 0; page < this.o.maxPages; page++) {
        const u = new URL(base);
        if (cursor !== undefined) u.searchParams.set('cursor', cursor);
        const res = await this.o.fetch(u.toString(), { signal, headers: { accept: 'application/json' } });
        if (!res.ok) throw new Error(`catalog URL answered HTTP ${res.status}`);
        const body = await res.text();
        if (Buffer.byteLength(body) > this.o.maxBytes)
          throw new Error(`catalog page is over the limit of ${this.o.maxBytes} bytes`);
        const doc = JSON.parse(body) as { metadata?: { nextCursor?: unknown } };
        const r = this.parseDocument(doc, 'url', 'url');
        entries.push(...r.entries);
        skipped += r.skipped;
        const next = doc.metadata?.nextCursor;
        if (typeof next !== 'string' || next === '' || entries.length >= this.o.maxEntries) break;
        cursor = next;
      }
      this.remote = { at: Date.now(), entries, skipped };
    } catch (err) {
      this.o.logger.warn(
        { url: base, err: errorText(err), keptEntries: this.remote?.entries.length ?? 0 },
        'catalog URL could not be read; keeping the last good copy',
      );
      // retry no sooner than the cache period: a failing URL is not hammered on every list
      this.remote = {
        at: Date.now(),
        entries: this.remote?.entries ?? [],
        skipped: this.remote?.skipped ?? 0,
      };
    }
  }

  private parseDocument(
    doc: unknown,
    label: string,
    kind: CatalogSourceKind,
  ): { entries: LoadedEntry[]; skipped: number } {
    let items: unknown[];
    try {
      items = documentItems(doc);
    } catch (err) {
      this.problem({ source: label, index: -1, name: undefined, message: errorText(err) });
      return { entries: [], skipped: 1 };
    }
    const entries: LoadedEntry[] = [];
    let skipped = 0;
    for (const [index, item] of items.entries()) {
      const name =
        item && typeof item === 'object' && 'name' in item && typeof item.name === 'string'
          ? item.name.slice(0, 200)
          : undefined;
      const parsed = parseServerDetail(item);
      if (!parsed.ok) {
        this.problem({ source: label, index, name, message: parsed.message });
        skipped++;
        continue;
      }
      const status = parsed.server._meta?.['io.modelcontextprotocol.registry/official']?.status;
      if (status === 'deleted' || status === 'deprecated') {
        skipped++;
        continue;
      }
      const { variants, problems } = installVariants(parsed.server, this.o.registryHost);
      if (variants.length === 0) {
        this.problem({ source: label, index, name, message: problems.join('; ') || 'nothing to install' });
        skipped++;
        continue;
      }
      entries.push({ server: parsed.server, source: kind, variants });
    }
    return { entries, skipped };
  }

  /** Logs each distinct problem once per source (lists are read often). */
  private problem(p: EntryProblem): void {
    const key = `${p.source}\u0000${p.index}\u0000${p.name ?? ''}\u0000${p.message}`;
    if (this.reported.has(key)) return;
    if (this.reported.size > 10_000) this.reported.clear();
    this.reported.add(key);
    this.o.logger.warn(p, 'catalog entry skipped');
  }
}

function newer(a: ServerDetail, b: ServerDetail): boolean {
  const latest = (s: ServerDetail) =>
    s._meta?.['io.modelcontextprotocol.registry/official']?.isLatest === true;
  if (latest(a) !== latest(b)) return latest(a);
  const va = semver.valid(a.version);
  const vb = semver.valid(b.version);
  if (va && vb) return semver.gt(va, vb);
  return false;
}

function errorText(err: unknown): string {
  if (err instanceof SyntaxError) return `not valid JSON (${err.message.slice(0, 200)})`;
  return err instanceof Error ? err.message.slice(0, 500) : String(err).slice(0, 500);
}
