import { EventEmitter } from 'node:events';
import path from 'node:path';
import { eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { pluginRegistry, type PluginRegistryRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { computePluginChecksum } from '../manifest/checksum.js';
import { loadManifest } from '../manifest/load.js';
import type { HayPluginManifest } from '../manifest/types.js';
import type { ManifestValidator } from '../manifest/validator.js';
import type { PluginSpec } from '../runtime/ports.js';
import {
  describeLoadError,
  findPluginFolders,
  mapLimit,
  type FoundFolder,
  type LoadedFolder,
} from './discovery.js';

/** A read-only snapshot of one registry row, with its absolute folder. */
export interface RegisteredPlugin {
  key: string;
  pluginId: string;
  name: string;
  version: string;
  relPath: string;
  dir: string;
  sourceType: 'core' | 'custom';
  organizationId: string | null;
  status: 'ok' | 'invalid' | 'missing';
  validationError: string | null;
  manifest: HayPluginManifest | null;
  checksum: string;
  installed: boolean;
  built: boolean;
  installError: string | null;
  buildError: string | null;
  maxConcurrentInstances: number;
  updatedAt: Date;
}

export interface ScanReport {
  plugins: number;
  ok: number;
  invalid: { relPath: string; error: string }[];
  /** Folders that could not be recorded at all (duplicate ids, bad custom folder names). */
  skipped: { relPath: string; reason: string }[];
  changed: string[];
  missing: string[];
  durationMs: number;
}

export interface RegistryEvents {
  /** A plugin's files changed (new checksum): instances must drain and restart, caches drop entries. */
  changed: [plugin: RegisteredPlugin];
  /** A plugin folder disappeared; its row and org configuration stay. */
  missing: [plugin: RegisteredPlugin];
}

export interface PluginRegistryOptions {
  db: Db;
  logger: Logger;
  pluginsDir: string;
  validator: ManifestValidator;
  defaultMaxConcurrentInstances: number;
  /** Folders read in parallel during a scan. */
  scanConcurrency?: number;
  /**
   * Cross-plugin checks over every recorded folder of a scan (e.g. dependency ids, ranges, cycles):
   * returns a validation error per index; those plugins are recorded as invalid.
   */
  crossCheck?: (
    plugins: readonly {
      pluginId: string;
      organizationId: string | null;
      dependencies: Record<string, string> | undefined;
    }[],
  ) => Map<number, string>;
  /**
   * Awaited before a scan resolves, after its events were emitted (e.g. staging of changed versions), so
   * whoever awaits `scan()` sees its effects.
   */
  afterScan?: () => Promise<void>;
  /**
   * True when folder checksum `found` of plugin `key` recorded at `checksum` comes from the host's own
   * install/build step (running, or what it left): the row keeps `checksum` and its install state.
   */
  writtenBySteps?: (key: string, checksum: string, found: string) => boolean;
}

type InstallPatch = Partial<Pick<PluginRegistryRow, 'installed' | 'built' | 'installError' | 'buildError'>>;

/**
 * The plugin registry: discovers plugin folders, validates and checksums them, records them in
 * `plugin_registry`, and answers lookups from an in-memory snapshot refreshed by each scan. Core ids are
 * global; a custom plugin is visible only to its organization and can never shadow a core id.
 */
export class PluginRegistry extends EventEmitter<RegistryEvents> {
  private readonly opts: PluginRegistryOptions;
  private byKey = new Map<string, RegisteredPlugin>();
  /** Rows sharing a plugin id (one core and/or one per organization); rebuilt with byKey. */
  private byPluginId = new Map<string, RegisteredPlugin[]>();
  private scanning: Promise<ScanReport> | undefined;
  private queuedScan: Promise<ScanReport> | undefined;

  constructor(options: PluginRegistryOptions) {
    super();
    this.opts = options;
  }

  /**
   * Scans the plugins directory and reconciles the database; calls made while a scan runs share one scan
   * after it, so every caller sees the folders as they were when it called. An invalid or unreadable
   * plugin is recorded with its error and never stops the scan.
   */
  scan(): Promise<ScanReport> {
    return this.scanAfterNow().then(async (report) => {
      await this.opts.afterScan?.();
      return report;
    });
  }

  /**
   * A scan that reads the folders after this call: a new one when none runs, else the one queued after
   * the running scan (shared by every request made meanwhile).
   */
  private scanAfterNow(): Promise<ScanReport> {
    const running = this.scanning;
    if (!running) {
      const run = this.doScan().finally(() => {
        if (this.scanning === run) this.scanning = undefined;
      });
      this.scanning = run;
      return run;
    }
    this.queuedScan ??= running
      .catch(() => undefined)
      .then(() => {
        this.queuedScan = undefined;
        return this.scanAfterNow();
      });
    return this.queuedScan;
  }

  /** The plugin `pluginId` as seen by `orgId`: a core plugin, or that organization's own custom plugin. */
  get(orgId: string | null, pluginId: string): RegisteredPlugin | undefined {
    const same = this.byPluginId.get(pluginId);
    if (!same) return undefined;
    let custom: RegisteredPlugin | undefined;
    for (const p of same) {
      if (p.sourceType === 'core') return p;
      if (orgId !== null && p.organizationId === orgId) custom = p;
    }
    return custom;
  }

  getByKey(key: string): RegisteredPlugin | undefined {
    return this.byKey.get(key);
  }

  /** Core plugins plus `orgId`'s custom plugins (any status), ordered by id. */
  list(orgId: string | null): RegisteredPlugin[] {
    return [...this.byKey.values()]
      .filter((p) => p.sourceType === 'core' || (orgId !== null && p.organizationId === orgId))
      .sort((a, b) => a.pluginId.localeCompare(b.pluginId) || a.sourceType.localeCompare(b.sourceType));
  }

  listAll(): RegisteredPlugin[] {
    return [...this.byKey.values()].sort((a, b) => a.relPath.localeCompare(b.relPath));
  }

  /** Runtime view of a valid plugin; undefined for invalid or missing ones. */
  toSpec(p: RegisteredPlugin): PluginSpec | undefined {
    if (p.status !== 'ok' || p.manifest === null) return undefined;
    return {
      pluginKey: p.key,
      pluginId: p.pluginId,
      version: p.version,
      checksum: p.checksum,
      rootDir: p.dir,
      sourceType: p.sourceType,
      organizationId: p.organizationId,
      manifest: p.manifest,
      maxConcurrentInstances: p.maxConcurrentInstances,
    };
  }

  /** Records install/build outcome for the row, unless its checksum moved on meanwhile. */
  async setInstallState(key: string, checksum: string, patch: InstallPatch): Promise<void> {
    const current = this.byKey.get(key);
    if (!current || current.checksum !== checksum) return;
    const [row] = await this.opts.db
      .update(pluginRegistry)
      .set({ ...patch, updatedAt: new Date() })
      .where(eq(pluginRegistry.id, key))
      .returning();
    if (row) this.put(this.toPlugin(row));
  }

  /** Re-reads one row (e.g. after another component changed it). */
  async refresh(key: string): Promise<RegisteredPlugin | undefined> {
    const [row] = await this.opts.db.select().from(pluginRegistry).where(eq(pluginRegistry.id, key));
    if (!row) {
      this.byKey.delete(key);
      this.reindex();
      return undefined;
    }
    const p = this.toPlugin(row);
    this.put(p);
    return p;
  }

  private put(p: RegisteredPlugin): void {
    this.byKey.set(p.key, p);
    this.reindex();
  }

  private reindex(): void {
    const index = new Map<string, RegisteredPlugin[]>();
    for (const p of this.byKey.values()) {
      const list = index.get(p.pluginId);
      if (list) list.push(p);
      else index.set(p.pluginId, [p]);
    }
    this.byPluginId = index;
  }

  private async doScan(): Promise<ScanReport> {
    const started = performance.now();
    const { db, logger, pluginsDir } = this.opts;
    const skipped: ScanReport['skipped'] = [];
    const found = await findPluginFolders(pluginsDir, (relPath, reason) => skipped.push({ relPath, reason }));
    const loaded = await mapLimit(found, this.opts.scanConcurrency ?? 32, (f) => this.load(f));

    const coreIds = new Set<string>();
    const seen = new Map<string, string>();
    const wanted: { folder: LoadedFolder; pluginId: string; row: NewRow }[] = [];
    for (const folder of loaded) {
      const pluginId = folder.ok ? folder.manifest.id : path.basename(folder.dir);
      const scope = folder.organizationId ?? 'core';
      const scopeKey = `${scope}/${pluginId}`;
      const first = seen.get(scopeKey);
      if (first !== undefined) {
        skipped.push({
          relPath: folder.relPath,
          reason: `duplicate plugin id "${pluginId}" (already used by ${first})`,
        });
        continue;
      }
      seen.set(scopeKey, folder.relPath);
      let row = this.rowFor(folder, pluginId);
      if (folder.sourceType === 'core' && folder.ok) coreIds.add(pluginId);
      if (folder.sourceType === 'custom' && coreIds.has(pluginId)) {
        row = {
          ...row,
          status: 'invalid',
          validationError: `plugin id "${pluginId}" is reserved by a core plugin`,
        };
      }
      wanted.push({ folder, pluginId, row });
    }
    const crossProblems = this.opts.crossCheck?.(
      wanted.map((w) => ({
        pluginId: w.pluginId,
        organizationId: w.row.organizationId,
        dependencies: w.folder.ok ? w.folder.manifest.dependencies : undefined,
      })),
    );
    for (const [i, error] of crossProblems ?? []) {
      const w = wanted[i];
      if (w && w.row.status === 'ok') w.row = { ...w.row, status: 'invalid', validationError: error };
    }

    const existing = await db.select().from(pluginRegistry);
    const index = new Map(existing.map((r) => [`${r.organizationId ?? 'core'}/${r.pluginId}`, r]));
    const inserts: NewRow[] = [];
    const changed: string[] = [];
    const changedKeys: string[] = [];
    const matched = new Set<string>();
    for (const w of wanted) {
      const prev = index.get(`${w.row.organizationId ?? 'core'}/${w.pluginId}`);
      if (!prev) {
        inserts.push(w.row);
        continue;
      }
      matched.add(prev.id);
      if (
        prev.checksum !== w.row.checksum &&
        w.row.status === 'ok' &&
        this.opts.writtenBySteps?.(prev.id, prev.checksum, w.row.checksum) === true
      )
        w.row = { ...w.row, checksum: prev.checksum };
      const checksumChanged = prev.checksum !== w.row.checksum;
      const same =
        !checksumChanged &&
        prev.status === w.row.status &&
        prev.validationError === w.row.validationError &&
        prev.pluginPath === w.row.pluginPath &&
        prev.maxConcurrentInstances === w.row.maxConcurrentInstances;
      if (same) continue;
      await db
        .update(pluginRegistry)
        .set({
          ...w.row,
          updatedAt: new Date(),
          ...(checksumChanged
            ? { installed: false, built: false, installError: null, buildError: null }
            : {}),
        })
        .where(eq(pluginRegistry.id, prev.id));
      if (checksumChanged && prev.status !== 'missing') {
        changed.push(w.folder.relPath);
        changedKeys.push(prev.id);
      }
    }
    if (inserts.length > 0) {
      for (let i = 0; i < inserts.length; i += 500)
        await db.insert(pluginRegistry).values(inserts.slice(i, i + 500));
    }
    const vanished = existing.filter((r) => !matched.has(r.id) && r.status !== 'missing').map((r) => r.id);
    if (vanished.length > 0) {
      await db
        .update(pluginRegistry)
        .set({ status: 'missing', updatedAt: new Date() })
        .where(inArray(pluginRegistry.id, vanished));
    }

    const rows = await db.select().from(pluginRegistry);
    this.byKey = new Map(rows.map((r) => [r.id, this.toPlugin(r)]));
    this.reindex();

    const invalid = wanted
      .filter((w) => w.row.status === 'invalid')
      .map((w) => ({ relPath: w.folder.relPath, error: w.row.validationError ?? 'invalid' }));
    for (const p of this.listAll()) {
      const log = { pluginId: p.pluginId, orgId: p.organizationId, path: p.relPath, version: p.version };
      if (p.status === 'ok') logger.info({ ...log, installed: p.installed, built: p.built }, 'plugin ok');
      else if (p.status === 'missing') logger.warn(log, 'plugin folder missing');
      else logger.warn({ ...log, error: p.validationError }, 'plugin invalid');
    }
    for (const s of skipped) logger.warn({ path: s.relPath, reason: s.reason }, 'plugin folder skipped');
    for (const key of changedKeys) {
      const p = this.byKey.get(key);
      if (p) this.emit('changed', p);
    }
    for (const key of vanished) {
      const p = this.byKey.get(key);
      if (p) this.emit('missing', p);
    }
    return {
      plugins: wanted.length,
      ok: wanted.length - invalid.length,
      invalid,
      skipped,
      changed,
      missing: vanished.map((k) => this.byKey.get(k)?.relPath ?? k),
      durationMs: Math.round(performance.now() - started),
    };
  }

  private async load(folder: FoundFolder): Promise<LoadedFolder> {
    const display = path.join(
      path.relative(process.cwd(), this.opts.pluginsDir) || '.',
      folder.relPath,
      'manifest.json',
    );
    let checksum = '';
    try {
      checksum = await computePluginChecksum(folder.dir);
      const { manifest } = await loadManifest(folder.dir, this.opts.validator, display);
      return { ...folder, ok: true, manifest, checksum };
    } catch (err) {
      return { ...folder, ok: false, error: describeLoadError(err), checksum: checksum || '0'.repeat(64) };
    }
  }

  private rowFor(folder: LoadedFolder, pluginId: string): NewRow {
    const base = {
      pluginId,
      pluginPath: folder.relPath,
      checksum: folder.checksum,
      sourceType: folder.sourceType,
      organizationId: folder.organizationId,
    };
    if (!folder.ok) {
      return {
        ...base,
        name: pluginId,
        version: '0.0.0',
        manifest: null,
        status: 'invalid',
        validationError: folder.error,
        maxConcurrentInstances: this.opts.defaultMaxConcurrentInstances,
      };
    }
    const m = folder.manifest;
    return {
      ...base,
      name: m.name,
      version: m.version,
      manifest: m,
      status: 'ok',
      validationError: null,
      maxConcurrentInstances: m.runtime?.maxConcurrentInstances ?? this.opts.defaultMaxConcurrentInstances,
    };
  }

  private toPlugin(r: PluginRegistryRow): RegisteredPlugin {
    return {
      key: r.id,
      pluginId: r.pluginId,
      name: r.name,
      version: r.version,
      relPath: r.pluginPath,
      dir: path.join(this.opts.pluginsDir, ...r.pluginPath.split('/')),
      sourceType: r.sourceType,
      organizationId: r.organizationId,
      status: r.status,
      validationError: r.validationError,
      manifest: r.manifest ?? null,
      checksum: r.checksum,
      installed: r.installed,
      built: r.built,
      installError: r.installError,
      buildError: r.buildError,
      maxConcurrentInstances: r.maxConcurrentInstances,
      updatedAt: r.updatedAt,
    };
  }
}

type NewRow = Pick<
  typeof pluginRegistry.$inferInsert,
  | 'pluginId'
  | 'name'
  | 'version'
  | 'pluginPath'
  | 'manifest'
  | 'checksum'
  | 'sourceType'
  | 'organizationId'
  | 'status'
  | 'validationError'
  | 'maxConcurrentInstances'
> & { status: 'ok' | 'invalid'; validationError: string | null; organizationId: string | null };
