import path from 'node:path';
import { UsageAnalytics, type AnalyticsGroupBy, type AnalyticsRow } from '../analytics/usage-analytics.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { HostConfig } from '../config.js';
import type { PluginRolloutRow } from '../db/schema-lifecycle.js';
import type { Db } from '../db/database.js';
import { NotFoundError } from '../errors.js';
import type { CallFinishedListener } from '../invocation/call-events.js';
import type { Logger } from '../logger.js';
import type { PluginRegistry, RegisteredPlugin } from '../registry/plugin-registry.js';
import type { InstanceManager } from '../runtime/instance/index.js';
import type { ConnectionFactory, PluginPreparer } from '../runtime/ports.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import { DependencyRules } from './dependencies.js';
import { VersionService, type VersionInfo } from './versions.js';
import { PluginWatcher } from './watcher.js';

export interface LifecycleDeps {
  config: HostConfig;
  db: Db;
  logger: Logger;
  registry: PluginRegistry;
  settings: PluginSettingsService;
  instances: InstanceManager;
  audit: AuditLog;
  installer: PluginPreparer;
  connections: ConnectionFactory;
}

export interface AnalyticsInput {
  pluginId?: string | undefined;
  version?: string | undefined;
  from: Date;
  to: Date;
  groupBy: AnalyticsGroupBy;
}

export interface VersionRef {
  version?: string | undefined;
  versionId?: string | undefined;
}

export interface RolloutInput extends VersionRef {
  percent: number;
  scope: 'orgs' | 'subjects';
  organizationId?: string | undefined;
  maxErrorRate?: number | undefined;
  minCalls?: number | undefined;
  windowMinutes?: number | undefined;
}

export interface RolloutView {
  rollout: PluginRolloutRow | null;
  /** Per-version numbers over the rollout's window (groupBy version). */
  arms: AnalyticsRow[];
}

/** What the API layer calls (src/api/lifecycle-router.ts). `orgId` null: the operator. */
export interface LifecycleApi {
  analytics(
    orgId: string | null,
    input: AnalyticsInput & { organizationId?: string | undefined },
  ): Promise<AnalyticsRow[]>;
  versions(
    orgId: string | null,
    pluginId: string,
  ): Promise<{ running: string | null; versions: VersionInfo[] }>;
  /** Pin (rollback) `orgId`, or with null every organization, to a kept version. */
  pin(
    orgId: string | null,
    pluginId: string,
    ref: VersionRef,
    actor: string,
    scopeOrg?: string,
  ): Promise<{ pluginId: string; version: string; checksum: string }>;
  unpin(orgId: string | null, pluginId: string, actor: string, scopeOrg?: string): Promise<{ success: true }>;
  rollout(pluginId: string, scopeOrg: string | undefined): Promise<RolloutView>;
  setRollout(
    pluginId: string,
    input: RolloutInput,
    actor: string,
    scopeOrg?: string,
  ): Promise<PluginRolloutRow>;
  endRollout(
    pluginId: string,
    how: 'promoted' | 'aborted',
    actor: string,
    scopeOrg?: string,
  ): Promise<PluginRolloutRow>;
}

export interface Lifecycle {
  api: LifecycleApi;
  analytics: UsageAnalytics;
  versions: VersionService;
  /** Pass to PluginService as `guard`. */
  dependencies: DependencyRules;
  /** Pass to PluginService as `onCallFinished`. */
  onCallFinished: CallFinishedListener;
  /** Rescans after file changes (hot reload); resolves when staging triggered by it has finished. */
  reload(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** `<dataDir>/plugin-versions`: where kept versions' files live. */
export function versionsRoot(config: HostConfig): string {
  return path.join(config.dataDir, 'plugin-versions');
}

/**
 * Builds the lifecycle area: usage analytics, dependency rules, kept versions with pins and rollouts,
 * the plugin folder watcher, and automatic rollback of failing canaries.
 */
export function wireLifecycle(deps: LifecycleDeps): Lifecycle {
  const { config, registry } = deps;
  const logger = deps.logger.child({ component: 'lifecycle' });
  const analytics = new UsageAnalytics({
    db: deps.db,
    logger: deps.logger.child({ component: 'analytics' }),
    flushIntervalMs: config.analyticsFlushIntervalMs,
    retentionDays: config.analyticsRetentionDays,
    maxBufferedRows: config.analyticsMaxBufferedRows,
  });
  const dependencies = new DependencyRules({
    registry,
    settings: deps.settings,
    audit: deps.audit,
    // vs is built below; only called after construction
    versionFor: (orgId, p) => Promise.resolve(vs.versionFor(orgId, p)),
  });
  const vs: VersionService = new VersionService({
    db: deps.db,
    logger,
    registry,
    instances: deps.instances,
    installer: deps.installer,
    connections: deps.connections,
    audit: deps.audit,
    dependencies,
    root: versionsRoot(config),
    pluginsDir: config.pluginsDir,
    retention: config.versionRetention,
    archiveMaxBytes: config.versionArchiveMaxBytes,
    startTimeoutMs: config.startTimeoutMs,
    refreshIntervalMs: 5_000,
  });

  const reload = async () => {
    await registry.scan();
    await vs.settled();
  };
  const watcher =
    config.hotReload === 'on'
      ? new PluginWatcher({
          roots: [path.join(config.pluginsDir, 'core'), path.join(config.pluginsDir, 'custom')],
          logger,
          debounceMs: config.watchDebounceMs,
          onChange: reload,
        })
      : undefined;

  /** The plugin as the caller sees it: an org sees core + its own; the operator names the org for custom ones. */
  const resolve = (orgId: string | null, pluginId: string, scopeOrg?: string): RegisteredPlugin => {
    const p = registry.get(orgId ?? scopeOrg ?? null, pluginId);
    if (!p) throw new NotFoundError('PLUGIN_NOT_FOUND', `plugin "${pluginId}" not found`);
    return p;
  };

  const rolloutView = async (p: RegisteredPlugin): Promise<RolloutView> => {
    const r = vs.activeRollout(p.key) ?? null;
    const windowMs = (r?.windowMinutes ?? 60) * 60_000;
    const to = new Date(Date.now() + 60_000);
    const arms = await analytics.query({
      // a rollout over subjects compares the two arms within its organization
      organizationId: r?.scope === 'subjects' ? r.organizationId : p.organizationId,
      pluginId: p.pluginId,
      from: new Date(to.getTime() - windowMs - 60_000),
      to,
      groupBy: 'version',
    });
    return { rollout: r, arms };
  };

  /** Rolls back active rollouts whose canary error rate over their window exceeds their threshold. */
  const checkRollouts = async () => {
    for (const p of registry.listAll()) {
      const r = vs.activeRollout(p.key);
      if (!r || r.maxErrorRate === null) continue;
      const canary = vs.findReady(p, { versionId: r.versionId });
      const view = await rolloutView(p);
      const arm = view.arms.find((a) => a.key === canary.version);
      if (!arm || arm.calls < r.minCalls) continue;
      const failures = arm.errors.tool + arm.errors.timeout + arm.errors.other;
      const rate = failures / arm.calls;
      if (rate > r.maxErrorRate) {
        const reason = `error rate ${(rate * 100).toFixed(1)}% over ${arm.calls} calls in ${r.windowMinutes} min exceeds ${(r.maxErrorRate * 100).toFixed(1)}%`;
        logger.warn({ pluginId: p.pluginId, version: canary.version, reason }, 'canary rolled back');
        await vs.endRollout(p, 'rolled_back', 'system', reason);
      }
    }
  };
  let checkTimer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;
  const runCheck = () => {
    checking ??= checkRollouts()
      .catch((err: unknown) => logger.error({ err }, 'canary check failed'))
      .finally(() => {
        checking = undefined;
      });
    return checking;
  };

  const api: LifecycleApi = {
    analytics(orgId, input) {
      if (orgId !== null && input.pluginId !== undefined) resolve(orgId, input.pluginId);
      return analytics.query({
        organizationId: orgId ?? input.organizationId ?? null,
        pluginId: input.pluginId,
        version: input.version,
        from: input.from,
        to: input.to,
        groupBy: input.groupBy,
      });
    },
    async versions(orgId, pluginId) {
      const p = resolve(orgId, pluginId);
      return {
        running: orgId !== null ? (vs.specFor(orgId, p)?.version ?? p.version) : null,
        versions: await vs.list(p),
      };
    },
    async pin(orgId, pluginId, ref, actor, scopeOrg) {
      const p = resolve(orgId, pluginId, scopeOrg);
      const v = vs.findReady(p, ref);
      await vs.pin(orgId ?? scopeOrg ?? null, p, v, actor);
      return { pluginId: p.pluginId, version: v.version, checksum: v.checksum };
    },
    async unpin(orgId, pluginId, actor, scopeOrg) {
      const p = resolve(orgId, pluginId, scopeOrg);
      await vs.unpin(orgId ?? scopeOrg ?? null, p, actor);
      return { success: true };
    },
    rollout: (pluginId, scopeOrg) => rolloutView(resolve(null, pluginId, scopeOrg)),
    setRollout(pluginId, input, actor, scopeOrg) {
      const p = resolve(null, pluginId, scopeOrg);
      return vs.setRollout(p, { ...input, version: vs.findReady(p, input) }, actor);
    },
    endRollout(pluginId, how, actor, scopeOrg) {
      return vs.endRollout(resolve(null, pluginId, scopeOrg), how, actor);
    },
  };

  let closing: Promise<void> | undefined;
  return {
    api,
    analytics,
    versions: vs,
    dependencies,
    onCallFinished: analytics.record,
    reload,
    async start() {
      analytics.start();
      await vs.start();
      await watcher?.start();
      checkTimer = setInterval(() => void runCheck(), config.analyticsFlushIntervalMs);
      checkTimer.unref();
    },
    close() {
      closing ??= (async () => {
        if (checkTimer) clearInterval(checkTimer);
        await watcher?.close();
        await checking;
        await vs.close();
        await analytics.close();
      })();
      return closing;
    },
  };
}

export { versionedPreparer } from './versions.js';
