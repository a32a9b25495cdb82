import type { Logger } from '../../logger.js';
import type { ActivityStore, CallMetaProvider, ConnectionFactory, PluginPreparer } from '../ports.js';
import type { InstanceStateKind } from './state.js';

/** Timings of the instance manager, all in milliseconds (tiny in tests). */
export interface InstanceManagerOptions {
  /** Running instances with no call for this long are stopped (per plugin: manifest runtime.idleTimeoutMs). */
  idleTimeoutMs: number;
  idleSweepIntervalMs: number;
  /** Longest wait in a plugin's queue for a free instance slot before CapacityError. */
  queueTimeoutMs: number;
  /** Default timeout of callTool/listTools when the caller gives none. */
  callTimeoutMs: number;
  /** Spawn + MCP initialize. */
  startTimeoutMs: number;
  /** Idle running instances are pinged this often. */
  healthIntervalMs: number;
  /** An instance unused (and unpinged) for longer than this is pinged before it serves a call. */
  pingBeforeReuseAfterMs: number;
  crashBackoffBaseMs: number;
  crashBackoffMaxMs: number;
  activityFlushIntervalMs: number;
  /** close() waits this long for in-flight calls before stopping instances. Default 10 s. */
  shutdownDrainMs?: number;
  /** Timeout of one health ping. Default min(callTimeoutMs, 10 s). */
  pingTimeoutMs?: number;
  /**
   * When a call fails with a connection error, how long to wait for the connection's end report (exit
   * code, signal, limit) so the caller gets the crash reason. Default 500.
   */
  crashReportGraceMs?: number;
  /**
   * A plugin's tools/list_changed (and resources/prompts list_changed) announcements become at most one
   * event per this window per instance: the first at once, later ones as one event at the window's end
   * (each event makes the host re-list the plugin and notify MCP sessions). Default 250.
   */
  listChangedWindowMs?: number;
}

export interface InstanceManagerDeps {
  logger: Logger;
  connections: ConnectionFactory;
  preparer: PluginPreparer;
  activity: ActivityStore;
  /** `_meta` of tool calls on shared instances; default `{ 'hay/orgId': orgId }`. */
  callMeta?: CallMetaProvider;
  options: InstanceManagerOptions;
  /** Clock for timestamps, idle and backoff decisions (timers still use real time). */
  now?: () => number;
}

/** Snapshot of one instance; a copy, safe to keep. Times are epoch milliseconds. */
export interface InstanceInfo {
  orgId: string;
  /** One process serving every organization (manifest runtime.shared, core plugins). */
  shared: boolean;
  pluginKey: string;
  pluginId: string;
  version: string;
  checksum: string;
  state: InstanceStateKind;
  pid: number | null;
  transport: 'stdio' | 'http' | 'sse' | 'websocket' | null;
  startedAt: number | null;
  lastActivityAt: number | null;
  /** Calls running on the connection now. */
  inFlight: number;
  /** Consecutive failures (crashes, failed starts); reset by a successful call or a healthy period. */
  failures: number;
  lastError: string | null;
  /** Set while failed: no start before this time. */
  retryAfter: number | null;
}

export interface InstanceUsage {
  orgId: string;
  pluginKey: string;
  pluginId: string;
  pid: number | null;
  rssBytes: number;
  cpuSeconds: number;
}

export interface UsageSummary {
  instances: InstanceUsage[];
  totalRssBytes: number;
  totalCpuSeconds: number;
}

export interface InstanceStateEvent {
  orgId: string;
  pluginKey: string;
  pluginId: string;
  from: InstanceStateKind;
  to: InstanceStateKind;
  reason: string;
}

export interface ToolsChangedEvent {
  orgId: string;
  pluginKey: string;
}

export interface InstanceManagerEvents {
  /** After every state change. */
  state: InstanceStateEvent;
  /** The plugin announced tools/list_changed; cached tool lists and results for the pair are stale. */
  toolsChanged: ToolsChangedEvent;
  /** The plugin announced resources/list_changed or prompts/list_changed. */
  extrasChanged: ToolsChangedEvent;
  /**
   * The plugin sent notifications/resources/updated for its own `uri`. `forOrgId`: a shared instance
   * (orgId SHARED_INSTANCE_ORG) addressed one organization (`_meta["hay/orgId"]`); unset, every one.
   */
  resourceUpdated: ToolsChangedEvent & { uri: string; forOrgId?: string };
}
