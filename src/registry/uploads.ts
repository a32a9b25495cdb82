import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit-log.js';
import type { Db } from '../db/database.js';
import { pluginRegistry } from '../db/schema.js';
import { AuthError, HayError, NotFoundError, ValidationError, isHayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { loadManifest } from '../manifest/load.js';
import type { ManifestValidator } from '../manifest/validator.js';
import { extractPluginZip, type ZipLimits } from '../security/zip-extract.js';
import type { PluginRegistry, RegisteredPlugin } from './plugin-registry.js';

export interface PluginUploadDeps {
  db: Db;
  logger: Logger;
  /** HostConfig.pluginsDir; custom plugins live in `custom/<orgId>/<pluginId>`. */
  pluginsDir: string;
  registry: PluginRegistry;
  validator: ManifestValidator;
  instances: { stopAllForPlugin(pluginKey: string, reason: string): Promise<void> };
  audit: AuditLog;
  limits: ZipLimits;
  /** Upper bound for extracting one archive. */
  extractTimeoutMs: number;
  /** Refuses an uploaded manifest's permissions.filesystem.read (PERMISSION_DENIED with the reason). */
  readPaths?: { check(pluginId: string, paths: readonly string[], trust: 'tenant'): Promise<string[]> };
}

/** What `repair()` did to one organization's folder at boot. */
export interface RepairAction {
  orgId: string;
  entry: string;
  action: 'restored-current' | 'completed-rollback' | 'restored-after-install' | 'removed-staging' | 'kept';
  pluginId?: string;
}

export interface UploadResult {
  pluginId: string;
  version: string;
  /** Stored as plugin_registry.zip_upload_id. */
  uploadId: string;
  /** A version was already installed (it is now in `_previous/`). */
  replaced: boolean;
  files: number;
  bytes: number;
}

const ORG_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PLUGIN_ID = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const PREVIOUS = '_previous';

/**
 * Custom plugins of an organization: install from an uploaded zip, uninstall, roll back. Layout under
 * `<pluginsDir>/custom/<orgId>/`: `<id>/` (current), `_previous/<id>/` (one previous version),
 * `_staging-<uuid>/` and `_swap-<uuid>/` (transient; discovery skips `_` folders). Operations of one
 * organization run one at a time; different organizations never touch each other's folders.
 */
export class PluginUploadService {
  private readonly d: PluginUploadDeps;
  private readonly orgQueues = new Map<string, Promise<unknown>>();

  constructor(deps: PluginUploadDeps) {
    this.d = deps;
  }

  /**
   * Extracts `zipPath` to a staging folder, validates its manifest.json (and that the id is not a core
   * plugin's), then moves the current version (if any) to `_previous/` and the staging folder into place,
   * rescans and audits `plugin.upload`. Nothing reaches `custom/<orgId>/<id>` unless every check passed.
   * Throws UPLOAD_INVALID / MANIFEST_INVALID (400) or CONFLICT (409); the failure is audited too.
   */
  install(orgId: string, actor: string, zipPath: string, signal?: AbortSignal): Promise<UploadResult> {
    return this.audited(orgId, actor, 'plugin.upload', null, () =>
      this.serial(orgId, () => this.doInstall(orgId, zipPath, signal)),
    );
  }

  /**
   * Installs a plugin from files the host generated (the no-code builder, src/builder/): they are written
   * to a staging folder and committed exactly like an extracted upload (manifest validated, core ids
   * refused, the current version kept in `_previous/` for rollback, rescan). `accept` runs on the staged
   * manifest before anything is replaced (e.g. refusing to overwrite an uploaded plugin); it may throw.
   * Audited as `action`.
   */
  installFiles(
    orgId: string,
    actor: string,
    files: Readonly<Record<string, string>>,
    options: {
      action: 'builder.save';
      accept?: (pluginId: string, currentDir: string | undefined) => Promise<void>;
    },
  ): Promise<UploadResult> {
    return this.audited(orgId, actor, options.action, null, () =>
      this.serial(orgId, async () => {
        const orgDir = this.orgDir(orgId);
        await mkdir(orgDir, { recursive: true, mode: 0o755 });
        const uploadId = randomUUID();
        const staging = path.join(orgDir, `_staging-${uploadId}`);
        await mkdir(staging, { mode: 0o755 });
        let bytes = 0;
        try {
          for (const [rel, content] of Object.entries(files)) {
            if (!/^[A-Za-z0-9._-]+$/.test(rel) || rel.startsWith('.'))
              throw new HayError('INTERNAL', 'generated file names are plain names');
            await writeFile(path.join(staging, rel), content, { mode: 0o644, flag: 'wx' });
            bytes += Buffer.byteLength(content);
          }
        } catch (err) {
          await rm(staging, { recursive: true, force: true });
          throw err;
        }
        return this.commitStaging(
          orgId,
          staging,
          uploadId,
          { files: Object.keys(files).length, bytes },
          options.accept,
        );
      }),
    );
  }

  /**
   * Stops the plugin's instances, removes its current and previous folders and rescans: the registry row
   * becomes `missing` (org settings and the audit trail stay). Core plugins cannot be uninstalled (403).
   */
  uninstall(orgId: string, pluginId: string, actor: string): Promise<{ success: true }> {
    return this.audited(orgId, actor, 'plugin.uninstall', pluginId, () =>
      this.serial(orgId, async () => {
        const p = this.ownCustom(orgId, pluginId);
        await this.d.instances.stopAllForPlugin(p.key, 'plugin uninstalled');
        // previous first: "previous without current" then only ever means an interrupted install (repair)
        await rm(this.previousDir(orgId, pluginId), { recursive: true, force: true });
        await rm(this.finalDir(orgId, pluginId), { recursive: true, force: true });
        await this.d.registry.scan();
        return { success: true as const };
      }),
    );
  }

  /**
   * Swaps the current version with the one kept in `_previous/` (so a second rollback rolls forward),
   * rescans (instances restart on the changed checksum) and audits `plugin.rollback`. CONFLICT when no
   * previous version exists.
   */
  rollback(orgId: string, pluginId: string, actor: string): Promise<{ pluginId: string; version: string }> {
    return this.audited(orgId, actor, 'plugin.rollback', pluginId, () =>
      this.serial(orgId, async () => {
        this.ownCustom(orgId, pluginId);
        const previous = this.previousDir(orgId, pluginId);
        if (!(await exists(previous)))
          throw new HayError('CONFLICT', `plugin ${pluginId} has no previous version to roll back to`);
        const manifest = await this.readManifest(previous);
        const final = this.finalDir(orgId, pluginId);
        const swap = path.join(this.orgDir(orgId), `_swap-${pluginId}-${randomUUID()}`);
        const hadCurrent = await exists(final);
        if (hadCurrent) await rename(final, swap);
        try {
          await rename(previous, final);
        } catch (err) {
          if (hadCurrent) await rename(swap, final);
          throw err;
        }
        if (hadCurrent) await rename(swap, previous);
        await this.d.registry.scan();
        return { pluginId, version: manifest.version };
      }),
    );
  }

  /**
   * Repairs what an interrupted operation left in `custom/<org>/` (call at boot, before the first scan):
   * `_swap-<id>-*` (a rollback stopped midway) goes back to `<id>/` when that is missing, else completes
   * the rollback into `_previous/<id>/`; `_previous/<id>/` without `<id>/` (an install stopped between its
   * two renames) becomes `<id>/` again; `_staging-*` (an unfinished upload) is removed. Never throws for one
   * bad folder: it is logged and kept.
   */
  async repair(): Promise<RepairAction[]> {
    const root = path.join(this.d.pluginsDir, 'custom');
    const orgs = await readdir(root).catch(() => [] as string[]);
    const actions: RepairAction[] = [];
    for (const orgId of orgs) {
      if (!ORG_ID.test(orgId)) continue;
      await this.serial(orgId, async () => {
        for (const a of await this.repairOrg(orgId)) actions.push(a);
      });
    }
    for (const a of actions)
      this.d.logger[a.action === 'kept' ? 'error' : 'warn'](
        a,
        'repaired an interrupted custom plugin operation',
      );
    return actions;
  }

  private async repairOrg(orgId: string): Promise<RepairAction[]> {
    const orgDir = this.orgDir(orgId);
    const out: RepairAction[] = [];
    const entries = await readdir(orgDir).catch(() => [] as string[]);
    for (const entry of entries.filter((e) => e.startsWith('_swap-'))) {
      const swap = path.join(orgDir, entry);
      try {
        const id = await this.swapPluginId(entry, swap);
        const final = this.finalDir(orgId, id);
        const previous = this.previousDir(orgId, id);
        if (!(await exists(final))) {
          await rename(swap, final);
          out.push({ orgId, entry, action: 'restored-current', pluginId: id });
        } else if (!(await exists(previous))) {
          await mkdir(path.dirname(previous), { recursive: true, mode: 0o755 });
          await rename(swap, previous);
          out.push({ orgId, entry, action: 'completed-rollback', pluginId: id });
        } else out.push({ orgId, entry, action: 'kept', pluginId: id });
      } catch (err) {
        this.d.logger.error({ orgId, entry, err }, 'could not repair an interrupted rollback');
        out.push({ orgId, entry, action: 'kept' });
      }
    }
    for (const entry of entries.filter((e) => e.startsWith('_staging-'))) {
      await rm(path.join(orgDir, entry), { recursive: true, force: true });
      out.push({ orgId, entry, action: 'removed-staging' });
    }
    const previousRoot = path.join(orgDir, PREVIOUS);
    for (const id of await readdir(previousRoot).catch(() => [] as string[])) {
      if (!PLUGIN_ID.test(id)) continue;
      const final = this.finalDir(orgId, id);
      if (await exists(final)) continue;
      await rename(path.join(previousRoot, id), final);
      out.push({ orgId, entry: `${PREVIOUS}/${id}`, action: 'restored-after-install', pluginId: id });
    }
    return out;
  }

  /** The plugin id of a swap folder: from its name (`_swap-<id>-<uuid>`), else from its manifest. */
  private async swapPluginId(entry: string, dir: string): Promise<string> {
    const m = /^_swap-(.+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.exec(entry);
    if (m?.[1] && PLUGIN_ID.test(m[1])) return m[1];
    const manifest = await this.readManifest(dir);
    if (!PLUGIN_ID.test(manifest.id)) throw new Error(`swap folder ${entry} has an invalid manifest id`);
    return manifest.id;
  }

  private async doInstall(
    orgId: string,
    zipPath: string,
    signal: AbortSignal | undefined,
  ): Promise<UploadResult> {
    const orgDir = this.orgDir(orgId);
    await mkdir(orgDir, { recursive: true, mode: 0o755 });
    const uploadId = randomUUID();
    const staging = path.join(orgDir, `_staging-${uploadId}`);
    const timeout = AbortSignal.timeout(this.d.extractTimeoutMs);
    const extracted = await extractPluginZip(
      zipPath,
      staging,
      this.d.limits,
      signal ? AbortSignal.any([signal, timeout]) : timeout,
    );
    return this.commitStaging(orgId, staging, uploadId, extracted);
  }

  /** Validates the staged folder's manifest and moves it into place (see install); removes it on failure. */
  private async commitStaging(
    orgId: string,
    staging: string,
    uploadId: string,
    extracted: { files: number; bytes: number },
    accept?: (pluginId: string, currentDir: string | undefined) => Promise<void>,
  ): Promise<UploadResult> {
    let stagingLeft = true;
    try {
      const manifest = await this.readManifest(staging);
      const id = manifest.id;
      if (!PLUGIN_ID.test(id))
        throw new ValidationError('UPLOAD_INVALID', `manifest id "${id}" is not a valid plugin id`);
      const readPaths = manifest.permissions?.filesystem?.read ?? [];
      if (this.d.readPaths && readPaths.length > 0) {
        await this.d.readPaths.check(id, readPaths, 'tenant').catch((err: unknown) => {
          throw new ValidationError(
            'UPLOAD_INVALID',
            `manifest.json permissions.filesystem.read: ${err instanceof Error ? err.message : String(err)}`,
          );
        });
      }
      const core = this.d.registry.listAll().find((p) => p.sourceType === 'core' && p.pluginId === id);
      if (core)
        throw new HayError(
          'CONFLICT',
          `plugin id "${id}" belongs to a core plugin; choose another id in manifest.json`,
        );
      const final = this.finalDir(orgId, id);
      const previous = this.previousDir(orgId, id);
      const replaced = await exists(final);
      await accept?.(id, replaced ? final : undefined);
      if (replaced) {
        await mkdir(path.dirname(previous), { recursive: true, mode: 0o755 });
        await rm(previous, { recursive: true, force: true });
        await rename(final, previous);
      }
      try {
        await rename(staging, final);
        stagingLeft = false;
      } catch (err) {
        if (replaced) await rename(previous, final).catch(() => undefined);
        throw err;
      }
      await this.d.registry.scan();
      await this.d.db
        .update(pluginRegistry)
        .set({ zipUploadId: uploadId })
        .where(and(eq(pluginRegistry.organizationId, orgId), eq(pluginRegistry.pluginId, id)));
      this.d.logger.info(
        {
          orgId,
          pluginId: id,
          version: manifest.version,
          uploadId,
          files: extracted.files,
          bytes: extracted.bytes,
          replaced,
        },
        'custom plugin uploaded',
      );
      return {
        pluginId: id,
        version: manifest.version,
        uploadId,
        replaced,
        files: extracted.files,
        bytes: extracted.bytes,
      };
    } finally {
      if (stagingLeft) await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * The folder's validated manifest. Read without following a symlink (a tenant's install step can write
   * its folder; a manifest.json linked to a host file must never be read, nor quoted in an error).
   */
  private async readManifest(dir: string) {
    const file = path.join(dir, 'manifest.json');
    await lstat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT')
        throw new ValidationError(
          'UPLOAD_INVALID',
          'the archive has no manifest.json at its root (or in its single top-level folder)',
        );
      throw err;
    });
    return (await loadManifest(dir, this.d.validator, 'manifest.json')).manifest;
  }

  /** The caller organization's own custom plugin, or NOT_FOUND / FORBIDDEN (core). */
  private ownCustom(orgId: string, pluginId: string): RegisteredPlugin {
    const p = this.d.registry.get(orgId, pluginId);
    if (p?.sourceType === 'core')
      throw new AuthError(
        'FORBIDDEN',
        `plugin ${pluginId} is a core plugin; only uploaded plugins can be changed`,
      );
    if (!p || p.organizationId !== orgId)
      throw new NotFoundError('PLUGIN_NOT_FOUND', `plugin "${pluginId}" not found`);
    return p;
  }

  private orgDir(orgId: string): string {
    if (!ORG_ID.test(orgId)) throw new HayError('INTERNAL', 'organization id is not a UUID');
    return path.join(this.d.pluginsDir, 'custom', orgId);
  }

  private finalDir(orgId: string, pluginId: string): string {
    if (!PLUGIN_ID.test(pluginId))
      throw new ValidationError('INPUT_INVALID', `"${pluginId}" is not a plugin id`);
    return path.join(this.orgDir(orgId), pluginId);
  }

  private previousDir(orgId: string, pluginId: string): string {
    return path.join(this.orgDir(orgId), PREVIOUS, pluginId);
  }

  /** Runs `fn` after every earlier operation of `orgId` settled. */
  private serial<T>(orgId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.orgQueues.get(orgId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.orgQueues.set(orgId, tail);
    void tail.then(() => {
      if (this.orgQueues.get(orgId) === tail) this.orgQueues.delete(orgId);
    });
    return run;
  }

  private async audited<T extends object>(
    orgId: string,
    actor: string,
    action: 'plugin.upload' | 'plugin.uninstall' | 'plugin.rollback' | 'builder.save',
    pluginId: string | null,
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      const out = await fn();
      const { pluginId: id, success: _success, ...details } = out as Record<string, unknown>;
      this.d.audit.record({
        organizationId: orgId,
        actor,
        action,
        pluginId: typeof id === 'string' ? id : pluginId,
        outcome: 'ok',
        details,
      });
      return out;
    } catch (err) {
      const code = isHayError(err) ? err.code : 'INTERNAL';
      this.d.audit.record({
        organizationId: orgId,
        actor,
        action,
        pluginId,
        outcome: code === 'FORBIDDEN' ? 'denied' : 'error',
        details: { code, message: isHayError(err) ? err.message.slice(0, 500) : 'internal error' },
      });
      if (!isHayError(err)) this.d.logger.error({ err, orgId, action }, 'custom plugin operation failed');
      throw err;
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}
