import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit-log.js';
import type { Db } from '../db/database.js';
import { pluginInstances } from '../db/schema.js';
import {
  pluginRollouts,
  pluginVersionPins,
  pluginVersions,
  type PluginRolloutRow,
  type PluginVersionRow,
} from '../db/schema-lifecycle.js';
import { HayError, NotFoundError, ValidationError, publicMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { computePluginChecksum } from '../manifest/checksum.js';
import type { PluginRegistry, RegisteredPlugin } from '../registry/plugin-registry.js';
import type { InstanceManager } from '../runtime/instance/index.js';
import type { ConnectionFactory, PluginPreparer, PluginSpec } from '../runtime/ports.js';
import type { DependencyRules } from './dependencies.js';
import { pluginVersionArchives } from '../db/schema-isolation.js';
import { discard, packVersion, unpackVersion } from './version-archive.js';

/**
 * A preparer for instances of kept versions: a copy under `versionsRoot` was taken from an installed
 * and built folder, so it is ready as it is; every other spec goes to `inner` (the installer).
 */
export function versionedPreparer(inner: PluginPreparer, versionsRoot: string): PluginPreparer {
  const root = path.resolve(versionsRoot) + path.sep;
  return {
    ensureReady: (spec) => (spec.rootDir.startsWith(root) ? Promise.resolve() : inner.ensureReady(spec)),
  };
}

/** Sticky bucket in [0, 100) for `id` within `salt` (a rollout id), from SHA-256. */
export function stickyPercent(salt: string, id: string): number {
  const h = createHash('sha256').update(salt).update('\u0000').update(id).digest();
  return (h.readUInt32BE(0) / 0x1_0000_0000) * 100;
}

/** Failed stages remembered per plugin (newest first). */
const KEPT_FAILURES = 5;

export interface VersionInfo {
  id: string;
  version: string;
  checksum: string;
  state: PluginVersionRow['state'];
  error: string | null;
  createdAt: string;
  readyAt: string | null;
}

export interface VersionServiceDeps {
  db: Db;
  logger: Logger;
  registry: PluginRegistry;
  instances: InstanceManager;
  installer: PluginPreparer;
  connections: ConnectionFactory;
  audit: AuditLog;
  dependencies: DependencyRules;
  /** `<dataDir>/plugin-versions`: one folder per kept version. */
  root: string;
  pluginsDir: string;
  /** Ready versions kept per plugin (pinned and canary versions are kept beyond it). */
  retention: number;
  startTimeoutMs: number;
  /** Pins, versions and rollouts are re-read this often (changes made by another host node). */
  refreshIntervalMs: number;
  /**
   * Versions whose files are at most this many bytes are also kept in the database
   * (`plugin_version_archives`), so a node without a copy materializes it; 0 = never. Default 0.
   */
  archiveMaxBytes?: number;
}

interface Ready {
  row: PluginVersionRow;
  spec: PluginSpec | undefined;
}

/**
 * Kept versions of every plugin (`plugin_versions`, files under `root`), organization pins and canary
 * rollouts, and the routing of each call to one version (`specFor`, synchronous, from a snapshot of those
 * tables refreshed on local changes and every `refreshIntervalMs`). A changed plugin is staged (install,
 * build, copy, trial start with initialize, tools/list and ping) before any call is routed to it; a
 * failed stage is recorded and the previous version keeps serving.
 */
export class VersionService {
  private readonly d: VersionServiceDeps;
  /** pluginKey -> ready versions, newest first. */
  private ready = new Map<string, Ready[]>();
  private byId = new Map<string, Ready>();
  /** pluginKey -> newest failed stage. */
  private failed = new Map<string, PluginVersionRow>();
  /** `${key}\0${checksum}` of versions ready on some node but without files on this one. */
  private elsewhere = new Set<string>();
  /** `${orgId}\0${key}` (or `*\0${key}`) -> version id. */
  private pins = new Map<string, string>();
  /** pluginKey -> active rollout. */
  private rollouts = new Map<string, PluginRolloutRow>();
  /** Lane specs of active subject rollouts, by lane. */
  private lanes = new Map<string, { base: PluginSpec; spec: PluginSpec }>();
  private readonly staging = new Map<string, Promise<void>>();
  /** Version ids whose archive this node has unpacked or is unpacking (or found unusable). */
  private readonly materialized = new Set<string>();
  private readonly unpacking = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private started = false;
  private readonly offs: (() => void)[] = [];

  constructor(deps: VersionServiceDeps) {
    this.d = deps;
  }

  async start(): Promise<void> {
    await mkdir(this.d.root, { recursive: true });
    // copies resolve packages the way their source folders did (a node_modules next to core/ and custom/)
    const shared = path.join(this.d.pluginsDir, 'node_modules');
    const link = path.join(this.d.root, 'node_modules');
    if (existsSync(shared) && !existsSync(link)) await symlink(shared, link, 'dir').catch(() => undefined);
    await this.reload();
    // files changed while the host was down: stage them; the kept version serves meanwhile
    this.stageUnkept();
    const onChanged = (p: RegisteredPlugin) => void this.stage(p);
    this.d.registry.on('changed', onChanged);
    this.offs.push(() => this.d.registry.off('changed', onChanged));
    this.offs.push(
      this.d.instances.on('state', (e) => {
        if (e.to !== 'running') return;
        const p = this.d.registry.getByKey(e.pluginKey);
        if (p && p.status === 'ok' && p.installed && p.built && !this.hasReady(p.key, p.checksum))
          void this.stage(p, { trial: false });
      }),
    );
    this.timer = setInterval(() => void this.reload().catch(() => undefined), this.d.refreshIntervalMs);
    this.timer.unref();
    this.started = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const off of this.offs.splice(0)) off();
    await Promise.allSettled([...this.staging.values(), ...this.unpacking]);
  }

  /**
   * After every registry scan (awaited by scan()): stages plugins whose current files have no kept copy
   * here although an older version is kept, or another node has made them ready (its scan changed the
   * shared registry row, so this node saw no change event); then waits for every stage.
   */
  async afterScan(): Promise<void> {
    // the boot scan runs before start(); start() stages what that scan changed, once processes can run
    if (!this.started || this.closed) return;
    await this.reload();
    this.stageUnkept();
    await this.settled();
  }

  /** Stages registry versions not kept here whose plugin has a kept version, or that another node keeps. */
  private stageUnkept(): void {
    for (const p of this.d.registry.listAll()) {
      if (p.status === 'missing' || this.hasReady(p.key, p.checksum) || this.isFailed(p)) continue;
      if (this.ready.has(p.key) || this.elsewhere.has(`${p.key}\u0000${p.checksum}`)) void this.stage(p);
    }
  }

  /** Resolves when every stage in progress has finished. */
  async settled(): Promise<void> {
    while (this.staging.size > 0 || this.unpacking.size > 0)
      await Promise.allSettled([...this.staging.values(), ...this.unpacking]);
  }

  /**
   * The version `orgId` runs of `plugin`: its pin, else the rollout's arm, else the operator's pin for
   * all, else the newest ready version. undefined: no kept version yet (the registry's folder is used).
   */
  specFor(orgId: string, plugin: RegisteredPlugin, subjectId?: string): PluginSpec | undefined {
    if (plugin.status === 'missing') return undefined;
    const key = plugin.key;
    const pinned = this.pins.get(`${orgId}\u0000${key}`);
    if (pinned !== undefined) return this.specOf(pinned, plugin);
    const r = this.rollouts.get(key);
    if (r) {
      const inArm =
        r.scope === 'orgs'
          ? stickyPercent(r.id, orgId) < r.percent
          : r.organizationId === orgId &&
            subjectId !== undefined &&
            stickyPercent(r.id, subjectId) < r.percent;
      if (inArm) {
        const s = this.specOf(r.versionId, plugin);
        // over subjects the org runs both arms at once: the canary arm in its own instance slot
        if (s && r.scope === 'subjects') return this.laneSpec(r.id, s);
        if (s) return s;
      }
    }
    const all = this.pins.get(`*\u0000${key}`);
    if (all !== undefined) return this.specOf(all, plugin);
    const newest = this.ready.get(key)?.[0];
    return newest ? this.specOf(newest.row.id, plugin) : undefined;
  }

  /** The version string `orgId` runs (for dependency ranges). */
  versionFor(orgId: string, plugin: RegisteredPlugin): string {
    return this.specFor(orgId, plugin)?.version ?? plugin.version;
  }

  /** Extra facts for plugins.get: what this org runs and the newest failed stage, if newer than it. */
  describe(
    orgId: string,
    plugin: RegisteredPlugin,
  ): {
    runningVersion: string;
    runningChecksum: string;
    pinned: boolean;
    stageError: { version: string; checksum: string; error: string; at: string } | null;
  } {
    const spec = this.specFor(orgId, plugin);
    const f = this.failed.get(plugin.key);
    const newest = this.ready.get(plugin.key)?.[0];
    const stale = f && (!newest || f.createdAt > (newest.row.readyAt ?? newest.row.createdAt));
    return {
      runningVersion: spec?.version ?? plugin.version,
      runningChecksum: spec?.checksum ?? plugin.checksum,
      pinned: this.pins.has(`${orgId}\u0000${plugin.key}`),
      stageError:
        stale && f
          ? {
              version: f.version,
              checksum: f.checksum,
              error: f.error ?? 'failed',
              at: f.createdAt.toISOString(),
            }
          : null,
    };
  }

  async list(plugin: RegisteredPlugin): Promise<VersionInfo[]> {
    const rows = await this.d.db
      .select()
      .from(pluginVersions)
      .where(eq(pluginVersions.pluginKey, plugin.key));
    return rows
      .filter((r) => r.state !== 'pruned')
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
      .map((r) => ({
        id: r.id,
        version: r.version,
        checksum: r.checksum,
        state: r.state,
        error: r.error,
        createdAt: r.createdAt.toISOString(),
        readyAt: r.readyAt?.toISOString() ?? null,
      }));
  }

  /** A ready version of `plugin` by id or version string (the newest one with that string). */
  findReady(
    plugin: RegisteredPlugin,
    ref: { versionId?: string | undefined; version?: string | undefined },
  ): PluginVersionRow {
    const list = this.ready.get(plugin.key) ?? [];
    const hit = list.find((r) =>
      ref.versionId ? r.row.id === ref.versionId : r.row.version === ref.version,
    );
    if (!hit)
      throw new HayError(
        'VERSION_NOT_FOUND',
        `plugin ${plugin.pluginId} has no kept version ${ref.versionId ?? ref.version ?? '?'}; kept: ${
          list.map((r) => r.row.version).join(', ') || 'none'
        }`,
      );
    return hit.row;
  }

  /**
   * Pins `orgId` (or, with null, every organization: also clearing organization pins and aborting an
   * active rollout) to a kept version. Refused when an enabled dependent's range excludes it.
   */
  async pin(
    orgId: string | null,
    plugin: RegisteredPlugin,
    version: PluginVersionRow,
    actor: string,
  ): Promise<void> {
    const orgs = orgId !== null ? [orgId] : await this.enabledOrgs(plugin.key);
    await this.d.dependencies.beforeVersionChange(orgs, plugin, version.version);
    const db = this.d.db;
    if (orgId !== null) {
      await db
        .delete(pluginVersionPins)
        .where(and(eq(pluginVersionPins.organizationId, orgId), eq(pluginVersionPins.pluginKey, plugin.key)));
    } else {
      await db.delete(pluginVersionPins).where(eq(pluginVersionPins.pluginKey, plugin.key));
      await db
        .update(pluginRollouts)
        .set({ state: 'aborted', reason: 'rollback for all organizations', updatedAt: new Date() })
        .where(and(eq(pluginRollouts.pluginKey, plugin.key), eq(pluginRollouts.state, 'active')));
    }
    await db.insert(pluginVersionPins).values({
      organizationId: orgId,
      pluginKey: plugin.key,
      versionId: version.id,
      pinnedBy: actor.slice(0, 100),
    });
    await this.reload();
    this.d.audit.record({
      organizationId: orgId,
      actor,
      action: 'plugin.pin',
      pluginId: plugin.pluginId,
      outcome: 'ok',
      details: {
        version: version.version,
        checksum: version.checksum,
        scope: orgId === null ? 'all' : 'org',
      },
    });
  }

  /** Back to following the latest version (the org's pin, or with null the pin for all). */
  async unpin(orgId: string | null, plugin: RegisteredPlugin, actor: string): Promise<void> {
    const latest = this.ready.get(plugin.key)?.[0]?.row;
    if (latest) {
      const orgs = orgId !== null ? [orgId] : await this.enabledOrgs(plugin.key);
      await this.d.dependencies.beforeVersionChange(orgs, plugin, latest.version);
    }
    await this.d.db
      .delete(pluginVersionPins)
      .where(
        and(
          eq(pluginVersionPins.pluginKey, plugin.key),
          orgId === null
            ? isNull(pluginVersionPins.organizationId)
            : eq(pluginVersionPins.organizationId, orgId),
        ),
      );
    await this.reload();
    this.d.audit.record({
      organizationId: orgId,
      actor,
      action: 'plugin.unpin',
      pluginId: plugin.pluginId,
      outcome: 'ok',
      details: { scope: orgId === null ? 'all' : 'org' },
    });
  }

  // ---- rollouts ------------------------------------------------------------------------------------------

  activeRollout(pluginKey: string): PluginRolloutRow | undefined {
    return this.rollouts.get(pluginKey);
  }

  async listRollouts(plugin: RegisteredPlugin): Promise<PluginRolloutRow[]> {
    return this.d.db.select().from(pluginRollouts).where(eq(pluginRollouts.pluginKey, plugin.key));
  }

  /** Starts a rollout (replacing an active one) or adjusts the active one's percent/threshold. */
  async setRollout(
    plugin: RegisteredPlugin,
    input: {
      version: PluginVersionRow;
      percent: number;
      scope: 'orgs' | 'subjects';
      organizationId?: string | undefined;
      maxErrorRate?: number | undefined;
      minCalls?: number | undefined;
      windowMinutes?: number | undefined;
    },
    actor: string,
  ): Promise<PluginRolloutRow> {
    if (input.scope === 'subjects' && !input.organizationId)
      throw new ValidationError('INPUT_INVALID', 'a rollout over subjects needs organizationId');
    const current = this.rollouts.get(plugin.key);
    const now = new Date();
    let row: PluginRolloutRow | undefined;
    const orgOf = input.scope === 'subjects' ? (input.organizationId ?? null) : null;
    if (
      current &&
      current.versionId === input.version.id &&
      current.scope === input.scope &&
      current.organizationId === orgOf
    ) {
      [row] = await this.d.db
        .update(pluginRollouts)
        .set({
          percent: input.percent,
          ...(input.maxErrorRate !== undefined ? { maxErrorRate: input.maxErrorRate } : {}),
          ...(input.minCalls !== undefined ? { minCalls: input.minCalls } : {}),
          ...(input.windowMinutes !== undefined ? { windowMinutes: input.windowMinutes } : {}),
          updatedAt: now,
        })
        .where(eq(pluginRollouts.id, current.id))
        .returning();
    } else {
      if (current)
        await this.d.db
          .update(pluginRollouts)
          .set({ state: 'aborted', reason: 'replaced by a new rollout', updatedAt: now })
          .where(eq(pluginRollouts.id, current.id));
      [row] = await this.d.db
        .insert(pluginRollouts)
        .values({
          pluginKey: plugin.key,
          versionId: input.version.id,
          scope: input.scope,
          organizationId: orgOf,
          percent: input.percent,
          state: 'active',
          maxErrorRate: input.maxErrorRate ?? null,
          minCalls: input.minCalls ?? 20,
          windowMinutes: input.windowMinutes ?? 15,
          createdBy: actor.slice(0, 100),
        })
        .returning();
    }
    if (!row) throw new HayError('INTERNAL', 'rollout not stored');
    await this.reload();
    this.d.audit.record({
      organizationId: row.organizationId,
      actor,
      action: 'rollout.set',
      pluginId: plugin.pluginId,
      outcome: 'ok',
      details: { rolloutId: row.id, version: input.version.version, percent: row.percent, scope: row.scope },
    });
    return row;
  }

  /**
   * Ends the active rollout. promote: everyone moves to its version (pin for all); abort/rolled_back:
   * everyone goes back to what they ran before.
   */
  async endRollout(
    plugin: RegisteredPlugin,
    how: 'promoted' | 'aborted' | 'rolled_back',
    actor: string,
    reason?: string,
  ): Promise<PluginRolloutRow> {
    const current = this.rollouts.get(plugin.key);
    if (!current)
      throw new NotFoundError('PLUGIN_NOT_FOUND', `plugin ${plugin.pluginId} has no active rollout`);
    if (how === 'promoted') {
      const version = this.byId.get(current.versionId)?.row;
      if (!version) throw new HayError('VERSION_NOT_FOUND', `the rollout's version is no longer kept`);
      // over subjects: the organization moves to the version (its pin); over organizations: everyone
      const org = current.scope === 'subjects' ? current.organizationId : null;
      await this.d.dependencies.beforeVersionChange(
        org !== null ? [org] : await this.enabledOrgs(plugin.key),
        plugin,
        version.version,
      );
      await this.d.db
        .delete(pluginVersionPins)
        .where(
          and(
            eq(pluginVersionPins.pluginKey, plugin.key),
            org !== null
              ? eq(pluginVersionPins.organizationId, org)
              : isNull(pluginVersionPins.organizationId),
          ),
        );
      await this.d.db.insert(pluginVersionPins).values({
        organizationId: org,
        pluginKey: plugin.key,
        versionId: version.id,
        pinnedBy: actor.slice(0, 100),
      });
    }
    const [row] = await this.d.db
      .update(pluginRollouts)
      .set({ state: how, reason: reason ?? null, updatedAt: new Date() })
      .where(and(eq(pluginRollouts.id, current.id), eq(pluginRollouts.state, 'active')))
      .returning();
    await this.reload();
    this.d.audit.record({
      organizationId: current.organizationId,
      actor,
      action:
        how === 'promoted' ? 'rollout.promote' : how === 'aborted' ? 'rollout.abort' : 'rollout.rollback',
      pluginId: plugin.pluginId,
      outcome: 'ok',
      details: { rolloutId: current.id, percent: current.percent, ...(reason ? { reason } : {}) },
    });
    return row ?? { ...current, state: how };
  }

  // ---- staging ------------------------------------------------------------------------------------------

  /** Stages the registry's current version of `plugin` (shared per plugin; a later change queues). */
  stage(plugin: RegisteredPlugin, options: { trial?: boolean } = {}): Promise<void> {
    const prev = this.staging.get(plugin.key) ?? Promise.resolve();
    const run = prev
      .then(() => this.doStage(plugin.key, options.trial ?? true))
      .catch((err: unknown) => this.d.logger.error({ err, pluginId: plugin.pluginId }, 'plugin stage failed'))
      .finally(() => {
        if (this.staging.get(plugin.key) === run) this.staging.delete(plugin.key);
      });
    this.staging.set(plugin.key, run);
    return run;
  }

  private async doStage(key: string, trial: boolean): Promise<void> {
    if (this.closed) return;
    const p = this.d.registry.getByKey(key);
    if (!p || p.status === 'missing') return;
    const readyElsewhere = this.elsewhere.has(`${p.key}\u0000${p.checksum}`);
    if (this.hasReady(p.key, p.checksum)) {
      // back to a kept version: it becomes the newest again
      await this.d.db
        .update(pluginVersions)
        .set({ readyAt: new Date() })
        .where(and(eq(pluginVersions.pluginKey, p.key), eq(pluginVersions.checksum, p.checksum)));
      return this.reload();
    }
    const log = this.d.logger.child({
      pluginId: p.pluginId,
      orgId: p.organizationId,
      checksum: p.checksum.slice(0, 12),
    });
    if (p.status !== 'ok' || !p.manifest)
      return this.recordFailure(p, `validation: ${p.validationError ?? 'invalid'}`);
    const source = this.d.registry.toSpec(p);
    if (!source) return;
    try {
      await this.d.installer.ensureReady(source);
    } catch (err) {
      return this.recordFailure(p, publicMessage(err));
    }
    const dir = this.localDir(p.key, p.checksum);
    const tmp = path.join(this.d.root, p.key, `.${p.checksum}.${randomUUID().slice(0, 8)}`);
    await mkdir(path.dirname(dir), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await cp(p.dir, tmp, { recursive: true, verbatimSymlinks: true });
    const copied = await computePluginChecksum(tmp).catch(() => '');
    // The install or build step (a custom command or a package.json lifecycle script) may have written
    // into the folder outside node_modules and dist: the copy is what it left when it has the checksum
    // that step left and the live folder still has it too. Otherwise the folder changed while it was
    // copied (an edit, an upload, a rollback); the next scan stages the newer files.
    const leftByStep = copied !== p.checksum;
    if (leftByStep) {
      const taken =
        this.d.installer.checksumLeftBySteps?.(p.key, p.checksum) === copied &&
        (await computePluginChecksum(p.dir).catch(() => '')) === copied;
      if (!taken) {
        await rm(tmp, { recursive: true, force: true });
        log.info('plugin folder changed during staging; waiting for the next change');
        return;
      }
      log.info('the install or build step wrote into the plugin folder; staging what it left');
    }
    await rename(tmp, dir);
    const spec: PluginSpec = { ...source, rootDir: dir };
    if (trial && !readyElsewhere) {
      const problem = await this.trialStart(p, spec);
      if (problem !== undefined) {
        await rm(dir, { recursive: true, force: true });
        return this.recordFailure(p, problem);
      }
    }
    const now = new Date();
    await this.d.db
      .insert(pluginVersions)
      .values({
        pluginKey: p.key,
        pluginId: p.pluginId,
        version: p.version,
        checksum: p.checksum,
        manifest: p.manifest,
        filesDir: dir,
        state: 'ready',
        readyAt: now,
      })
      .onConflictDoUpdate({
        target: [pluginVersions.pluginKey, pluginVersions.checksum],
        // another node made this version ready already: this node only adds its own copy
        set: readyElsewhere
          ? { state: 'ready', error: null }
          : { state: 'ready', error: null, filesDir: dir, manifest: p.manifest, readyAt: now },
      });
    await this.prune(p.key);
    await this.reload();
    log.info({ version: p.version }, 'plugin version ready');
    // after routing: other nodes need it only once it is ready here
    // an archive is checked against the row's checksum when unpacked, which files left by a step do not
    // match: other nodes stage such a version from their own plugins folder
    if (!readyElsewhere && !leftByStep)
      await this.storeArchive(p.key, p.checksum, dir, log).catch((err: unknown) =>
        log.warn({ err: publicMessage(err) }, 'could not store the version for other nodes'),
      );
    this.d.audit.record({
      organizationId: p.organizationId,
      actor: 'system',
      action: 'plugin.version',
      pluginId: p.pluginId,
      outcome: 'ok',
      details: { version: p.version, checksum: p.checksum },
    });
  }

  /** Keeps the files of a version just made ready in the database, when within archiveMaxBytes. */
  private async storeArchive(key: string, checksum: string, dir: string, log: Logger): Promise<void> {
    const max = this.d.archiveMaxBytes ?? 0;
    if (max <= 0) return;
    const [row] = await this.d.db
      .select({ id: pluginVersions.id })
      .from(pluginVersions)
      .where(and(eq(pluginVersions.pluginKey, key), eq(pluginVersions.checksum, checksum)))
      .limit(1);
    if (!row) return;
    const archive = await packVersion(dir, max).catch((err: unknown) => {
      log.warn({ err: publicMessage(err) }, 'could not pack the version for other nodes');
      return undefined;
    });
    if (!archive) {
      log.info(
        { maxBytes: max },
        'version files exceed HAY_VERSION_ARCHIVE_MAX_BYTES; other nodes stage it from their plugins folder',
      );
      return;
    }
    await this.d.db
      .insert(pluginVersionArchives)
      .values({ versionId: row.id, pluginKey: key, checksum, bytes: archive.length, archive })
      .onConflictDoNothing();
    this.materialized.add(row.id);
  }

  /**
   * A version ready on another node but without files here: unpack its archive (if the database has one)
   * into this node's copy, check its checksum, then route to it. Tried once per version; no archive yet
   * = tried again at the next reload.
   */
  private materialize(row: PluginVersionRow): void {
    if (this.closed || this.materialized.has(row.id) || (this.d.archiveMaxBytes ?? 0) <= 0) return;
    this.materialized.add(row.id);
    const log = this.d.logger.child({ pluginId: row.pluginId, version: row.version });
    const run = (async () => {
      const [a] = await this.d.db
        .select()
        .from(pluginVersionArchives)
        .where(eq(pluginVersionArchives.versionId, row.id))
        .limit(1);
      if (!a) {
        this.materialized.delete(row.id);
        return;
      }
      const dir = this.localDir(row.pluginKey, row.checksum);
      const tmp = path.join(this.d.root, row.pluginKey, `.${row.checksum}.${randomUUID().slice(0, 8)}`);
      try {
        await mkdir(path.dirname(dir), { recursive: true });
        await unpackVersion(a.archive, tmp);
        const sum = await computePluginChecksum(tmp);
        if (sum !== row.checksum) throw new Error(`checksum ${sum.slice(0, 12)} does not match`);
        if (existsSync(dir)) await discard(tmp);
        else await rename(tmp, dir);
      } catch (err) {
        await discard(tmp);
        log.error({ err: publicMessage(err) }, 'could not materialize a kept version from the database');
        return;
      }
      log.info({ bytes: a.bytes }, 'kept version materialized from the database');
      if (!this.closed) await this.reload();
    })()
      .catch((err: unknown) => {
        this.materialized.delete(row.id);
        log.warn({ err: publicMessage(err) }, 'materializing a kept version failed; retried later');
      })
      .finally(() => this.unpacking.delete(run));
    this.unpacking.add(run);
  }

  /** Start, initialize, tools/list and ping of the staged copy for one org that has it enabled. */
  private async trialStart(p: RegisteredPlugin, spec: PluginSpec): Promise<string | undefined> {
    const [org] = await this.d.db
      .select({ orgId: pluginInstances.organizationId })
      .from(pluginInstances)
      .where(and(eq(pluginInstances.pluginRegistryId, p.key), eq(pluginInstances.enabled, true)))
      .limit(1);
    if (!org) return undefined;
    const timeoutMs = this.d.startTimeoutMs;
    let conn;
    try {
      conn = await this.d.connections.connect(org.orgId, spec, { timeoutMs });
    } catch (err) {
      return `initialize: ${publicMessage(err)}`;
    }
    try {
      await conn.listTools({ timeoutMs });
      await conn.ping({ timeoutMs });
      return undefined;
    } catch (err) {
      return `health check: ${publicMessage(err)}`;
    } finally {
      await conn.close().catch(() => undefined);
    }
  }

  private async recordFailure(p: RegisteredPlugin, error: string): Promise<void> {
    this.d.logger.warn(
      { pluginId: p.pluginId, orgId: p.organizationId, error },
      'new plugin version refused',
    );
    const text = error.slice(0, 4000);
    await this.d.db
      .insert(pluginVersions)
      .values({
        pluginKey: p.key,
        pluginId: p.pluginId,
        version: p.version.slice(0, 64),
        checksum: p.checksum,
        manifest: p.manifest ?? ({} as NonNullable<RegisteredPlugin['manifest']>),
        filesDir: '',
        state: 'failed',
        error: text,
      })
      .onConflictDoUpdate({
        target: [pluginVersions.pluginKey, pluginVersions.checksum],
        set: { state: 'failed', error: text, createdAt: new Date() },
      });
    // failed stages are bounded too (a tenant can upload many broken versions)
    const failedRows = await this.d.db
      .select({ id: pluginVersions.id, createdAt: pluginVersions.createdAt })
      .from(pluginVersions)
      .where(and(eq(pluginVersions.pluginKey, p.key), eq(pluginVersions.state, 'failed')));
    const extra = failedRows
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
      .slice(KEPT_FAILURES)
      .map((r) => r.id);
    if (extra.length > 0) await this.d.db.delete(pluginVersions).where(inArray(pluginVersions.id, extra));
    await this.reload();
    this.d.audit.record({
      organizationId: p.organizationId,
      actor: 'system',
      action: 'plugin.version',
      pluginId: p.pluginId,
      outcome: 'error',
      details: { version: p.version, checksum: p.checksum, error: text.slice(0, 500) },
    });
  }

  /** Keeps the newest `retention` ready versions plus pinned and canary ones; removes the rest's files. */
  private async prune(key: string): Promise<void> {
    const rows = await this.d.db
      .select()
      .from(pluginVersions)
      .where(and(eq(pluginVersions.pluginKey, key), eq(pluginVersions.state, 'ready')));
    rows.sort((a, b) => (b.readyAt?.getTime() ?? 0) - (a.readyAt?.getTime() ?? 0));
    const pinned = await this.d.db
      .select({ id: pluginVersionPins.versionId })
      .from(pluginVersionPins)
      .where(eq(pluginVersionPins.pluginKey, key));
    const canary = await this.d.db
      .select({ id: pluginRollouts.versionId })
      .from(pluginRollouts)
      .where(and(eq(pluginRollouts.pluginKey, key), eq(pluginRollouts.state, 'active')));
    const keep = new Set([...pinned, ...canary].map((r) => r.id));
    const drop = rows.slice(this.d.retention).filter((r) => !keep.has(r.id));
    for (const r of drop) await rm(this.localDir(r.pluginKey, r.checksum), { recursive: true, force: true });
    if (drop.length > 0)
      await this.d.db.delete(pluginVersionArchives).where(
        inArray(
          pluginVersionArchives.versionId,
          drop.map((r) => r.id),
        ),
      );
    if (drop.length > 0)
      await this.d.db
        .update(pluginVersions)
        .set({ state: 'pruned' })
        .where(
          inArray(
            pluginVersions.id,
            drop.map((r) => r.id),
          ),
        );
  }

  private async enabledOrgs(key: string): Promise<string[]> {
    const rows = await this.d.db
      .select({ orgId: pluginInstances.organizationId })
      .from(pluginInstances)
      .where(and(eq(pluginInstances.pluginRegistryId, key), eq(pluginInstances.enabled, true)));
    return rows.map((r) => r.orgId);
  }

  private localDir(key: string, checksum: string): string {
    return path.join(this.d.root, key, checksum);
  }

  private isFailed(p: RegisteredPlugin): boolean {
    return this.failed.get(p.key)?.checksum === p.checksum;
  }

  private hasReady(key: string, checksum: string): boolean {
    return (this.ready.get(key) ?? []).some((r) => r.row.checksum === checksum);
  }

  /** `spec` in the instance slot of subject rollout `rolloutId` (cached, so calls share one record). */
  private laneSpec(rolloutId: string, spec: PluginSpec): PluginSpec {
    const lane = `canary:${rolloutId}`;
    const cached = this.lanes.get(lane);
    if (cached?.base === spec) return cached.spec;
    const out: PluginSpec = { ...spec, lane };
    this.lanes.set(lane, { base: spec, spec: out });
    return out;
  }

  private specOf(versionId: string, plugin: RegisteredPlugin): PluginSpec | undefined {
    const r = this.byId.get(versionId);
    if (!r) return undefined;
    r.spec ??= {
      pluginKey: plugin.key,
      pluginId: plugin.pluginId,
      version: r.row.version,
      checksum: r.row.checksum,
      rootDir: this.localDir(r.row.pluginKey, r.row.checksum),
      sourceType: plugin.sourceType,
      organizationId: plugin.organizationId,
      manifest: r.row.manifest,
      maxConcurrentInstances: plugin.maxConcurrentInstances,
    };
    return r.spec;
  }

  /** Re-reads versions, pins and active rollouts into the routing snapshot. */
  async reload(): Promise<void> {
    const [versions, pins, rollouts] = await Promise.all([
      this.d.db
        .select()
        .from(pluginVersions)
        .where(inArray(pluginVersions.state, ['ready', 'failed'])),
      this.d.db.select().from(pluginVersionPins),
      this.d.db.select().from(pluginRollouts).where(eq(pluginRollouts.state, 'active')),
    ]);
    const ready = new Map<string, Ready[]>();
    const byId = new Map<string, Ready>();
    const failed = new Map<string, PluginVersionRow>();
    const elsewhere = new Set<string>();
    for (const row of versions) {
      if (row.state === 'failed') {
        const f = failed.get(row.pluginKey);
        if (!f || f.createdAt < row.createdAt) failed.set(row.pluginKey, row);
        continue;
      }
      // files are per node (unless the data dir is shared): only versions with files here are routed to
      if (!existsSync(this.localDir(row.pluginKey, row.checksum))) {
        elsewhere.add(`${row.pluginKey}\u0000${row.checksum}`);
        this.materialize(row);
        continue;
      }
      const old = this.byId.get(row.id);
      const entry: Ready =
        old && old.row.readyAt?.getTime() === row.readyAt?.getTime() ? old : { row, spec: undefined };
      byId.set(row.id, entry);
      const list = ready.get(row.pluginKey);
      if (list) list.push(entry);
      else ready.set(row.pluginKey, [entry]);
    }
    for (const list of ready.values())
      list.sort((a, b) => (b.row.readyAt?.getTime() ?? 0) - (a.row.readyAt?.getTime() ?? 0));
    this.ready = ready;
    this.byId = byId;
    this.failed = failed;
    this.elsewhere = elsewhere;
    this.pins = new Map(pins.map((p) => [`${p.organizationId ?? '*'}\u0000${p.pluginKey}`, p.versionId]));
    this.rollouts = new Map(rollouts.map((r) => [r.pluginKey, r]));
    const active = new Set(rollouts.map((r) => `canary:${r.id}`));
    for (const lane of this.lanes.keys()) if (!active.has(lane)) this.lanes.delete(lane);
  }
}
