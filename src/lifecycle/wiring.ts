import { UsageAnalytics, type AnalyticsGroupBy, type AnalyticsRow } from '../analytics/usage-analytics.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { HostConfig } from '../config.js';
import type { Db } from '../db/database.js';
import { NotFoundError } from '../errors.js';
import type { CallFinishedListener } from '../invocation/call-events.js';
import type { Logger } from '../logger.js';
import type { PluginRegistry } from '../registry/plugin-registry.js';
import type { InstanceManager } from '../runtime/instance/index.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import { DependencyRules } from './dependencies.js';

export interface LifecycleDeps {
  config: HostConfig;
  db: Db;
  logger: Logger;
  registry: PluginRegistry;
  settings: PluginSettingsService;
  instances: InstanceManager;
  audit: AuditLog;
}

export interface AnalyticsInput {
  pluginId?: string | undefined;
  version?: string | undefined;
  from: Date;
  to: Date;
  groupBy: AnalyticsGroupBy;
}

/** What the API layer calls (src/api/lifecycle-router.ts). */
export interface LifecycleApi {
  /** `orgId` null: every organization (admin); else that organization's view (NOT_FOUND for plugins it cannot see). */
  analytics(
    orgId: string | null,
    input: AnalyticsInput & { organizationId?: string | undefined },
  ): Promise<AnalyticsRow[]>;
}

export interface Lifecycle {
  api: LifecycleApi;
  analytics: UsageAnalytics;
  /** Pass to PluginService as `guard`. */
  dependencies: DependencyRules;
  /** Pass to PluginService as `onCallFinished`. */
  onCallFinished: CallFinishedListener;
  start(): void;
  close(): Promise<void>;
}

/** Builds the lifecycle area (usage analytics; versions, rollouts, dependency rules, watcher). */
export function wireLifecycle(deps: LifecycleDeps): Lifecycle {
  const analytics = new UsageAnalytics({
    db: deps.db,
    logger: deps.logger.child({ component: 'analytics' }),
    flushIntervalMs: deps.config.analyticsFlushIntervalMs,
    retentionDays: deps.config.analyticsRetentionDays,
    maxBufferedRows: deps.config.analyticsMaxBufferedRows,
  });
  const dependencies = new DependencyRules({
    registry: deps.registry,
    settings: deps.settings,
    audit: deps.audit,
    versionFor: (_orgId, p) => Promise.resolve(p.version),
  });
  const api: LifecycleApi = {
    analytics(orgId, input) {
      if (orgId !== null && input.pluginId !== undefined && !deps.registry.get(orgId, input.pluginId))
        throw new NotFoundError('PLUGIN_NOT_FOUND', `plugin "${input.pluginId}" not found`);
      return analytics.query({
        organizationId: orgId ?? input.organizationId ?? null,
        pluginId: input.pluginId,
        version: input.version,
        from: input.from,
        to: input.to,
        groupBy: input.groupBy,
      });
    },
  };
  let closing: Promise<void> | undefined;
  return {
    api,
    analytics,
    dependencies,
    onCallFinished: analytics.record,
    start() {
      analytics.start();
    },
    close() {
      closing ??= analytics.close();
      return closing;
    },
  };
}
