import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditLog } from '../audit/audit-log.js';
import type { Db } from '../db/database.js';
import type { PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import type { PluginRegistry } from '../registry/plugin-registry.js';
import type { InstanceManager } from '../runtime/instance/index.js';
import { SHARED_INSTANCE_ORG } from '../runtime/ports.js';
import type { OrganizationService } from '../tenancy/organizations.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import { GatewayCatalog } from './catalog.js';
import { registerMcpEndpoint } from './endpoint.js';
import type { McpHostAllowList } from './host-check.js';
import { ResourceSubscriptions } from './subscriptions.js';
import { InputRounds } from './input-rounds.js';
import { LegacySessions } from './legacy-sessions.js';
import { createGatewayServer } from './mcp-server.js';
import { ModernHandlers } from './modern-handlers.js';
import { GatewayStore, type GatewaySettings } from './store.js';

export interface GatewayOptions {
  /** Bound on a start made only to learn a plugin's tools for a listing. Default: startTimeoutMs. */
  listTimeoutMs: number;
  maxSessions: number;
  maxSessionsPerOrg: number;
  sessionIdleMs: number;
  maxRequestBodyBytes: number;
  /** A call whose plugin asked for client input (sampling, elicitation, roots) waits this long for it. */
  inputRoundTimeoutMs: number;
  /** Plugin requests one call may have waiting for client input at once. Unset: InputRounds' default. */
  maxInputRequestsPerCall?: number;
  /** Messages kept per 2025-11-25 session for resuming a dropped SSE stream (Last-Event-ID). */
  maxResumeEventsPerSession: number;
  /** Approximate bytes of those messages kept per session (HAY_MCP_RESUME_BYTES_PER_SESSION). */
  maxResumeBytesPerSession: number;
  /** Bytes of a plugin's progress and log notifications relayed per tools/call request. */
  maxNotificationBytesPerCall: number;
  /** resources/subscribe held at once by one 2025-11-25 session. */
  maxSubscriptionsPerSession: number;
  /** `Host` / `Origin` names `/mcp` accepts (DNS-rebinding protection), checked before authentication. */
  allowList: McpHostAllowList;
}

export interface GatewayDeps {
  db: Db;
  logger: Logger;
  organizations: OrganizationService;
  plugins: PluginService;
  settings: PluginSettingsService;
  instances: InstanceManager;
  registry: PluginRegistry;
  audit: AuditLog;
  metricsRegistry: Registry;
  options: GatewayOptions;
}

export interface Gateway {
  store: GatewayStore;
  /** For the `gateway.*` procedures; configure announces tools/list_changed (names change). */
  settingsApi: {
    settings(orgId: string): Promise<GatewaySettings>;
    configure(orgId: string, settings: GatewaySettings): Promise<GatewaySettings>;
  };
  catalog: GatewayCatalog;
  /** Adds `/mcp` to the HTTP server (call from createHttpServer's register hook). */
  register(app: FastifyInstance): void;
  start(): void;
  /** Closes every MCP session and listen stream and unsubscribes from host events. Idempotent. */
  close(): Promise<void>;
}

/**
 * The MCP endpoint's composition: store, catalog, the two era front ends and the notification fan-out
 * (tools/list_changed on enable, disable, reconfigure, plugin update, and a plugin's own list change).
 */
export function wireGateway(d: GatewayDeps): Gateway {
  const logger = d.logger.child({ component: 'gateway' });
  const store = new GatewayStore(d.db);
  const leftOut = new Counter({
    name: 'hay_gateway_plugins_left_out_total',
    help: 'Plugins left out of an MCP tools/list because their tools could not be read',
    labelNames: ['plugin', 'reason'] as const,
    registers: [d.metricsRegistry],
  });
  const catalog = new GatewayCatalog({
    plugins: d.plugins,
    store,
    logger,
    leftOut,
    options: { listTimeoutMs: d.options.listTimeoutMs, memoMs: 5_000 },
  });
  const rounds = new InputRounds({
    maxWaitingPerOrg: d.options.maxSessionsPerOrg,
    roundTimeoutMs: d.options.inputRoundTimeoutMs,
    ...(d.options.maxInputRequestsPerCall !== undefined
      ? { maxPendingPerCall: d.options.maxInputRequestsPerCall }
      : {}),
  });
  const buildServer = (caller: Parameters<typeof createGatewayServer>[0]) =>
    createGatewayServer(caller, {
      catalog,
      plugins: d.plugins,
      rounds,
      logger,
      maxNotificationBytesPerCall: d.options.maxNotificationBytesPerCall,
    });
  const subscriptions = new ResourceSubscriptions({
    plugins: d.plugins,
    logger,
    maxPerSession: d.options.maxSubscriptionsPerSession,
  });
  const legacy = new LegacySessions({
    buildServer: (caller) =>
      createGatewayServer(caller, {
        catalog,
        plugins: d.plugins,
        rounds,
        logger,
        maxNotificationBytesPerCall: d.options.maxNotificationBytesPerCall,
        subscriptions: { registry: subscriptions, maxPerSession: d.options.maxSubscriptionsPerSession },
      }),
    logger,
    limits: {
      maxSessions: d.options.maxSessions,
      maxSessionsPerOrg: d.options.maxSessionsPerOrg,
      idleMs: d.options.sessionIdleMs,
      sweepIntervalMs: Math.max(1_000, Math.min(60_000, d.options.sessionIdleMs / 4)),
      maxResumeEvents: d.options.maxResumeEventsPerSession,
      maxResumeBytes: d.options.maxResumeBytesPerSession,
    },
  });
  const modern = new ModernHandlers({
    buildServer,
    logger,
    maxSubscriptionsPerOrg: d.options.maxSessionsPerOrg,
    maxRequestBodyBytes: d.options.maxRequestBodyBytes,
  });
  new Gauge({
    name: 'hay_gateway_sessions',
    help: 'Open 2025-11-25 MCP sessions on /mcp',
    registers: [d.metricsRegistry],
    collect() {
      this.set(legacy.count());
    },
  });

  /** Tools, resources and prompts of the org may have changed (enable, disable, configure, update). */
  const listChanged = (orgId: string) => {
    catalog.invalidate(orgId);
    legacy.toolsChanged(orgId);
    modern.toolsChanged(orgId);
    legacy.extrasChanged(orgId);
    modern.extrasChanged(orgId);
  };
  const toolsChanged = (orgId: string) => {
    catalog.invalidate(orgId);
    legacy.toolsChanged(orgId);
    modern.toolsChanged(orgId);
  };
  const extrasChanged = (orgId: string) => {
    catalog.invalidate(orgId);
    legacy.extrasChanged(orgId);
    modern.extrasChanged(orgId);
  };
  const refreshExtrasThenNotify = (orgId: string, pluginKey: string, always: boolean) => {
    const p = d.registry.getByKey(pluginKey);
    if (!p) return;
    void catalog
      .refreshExtras(orgId, p.pluginId, p.key, p.checksum)
      .catch((err: unknown) => {
        logger.debug(
          { orgId, pluginId: p.pluginId, err: String(err) },
          'resource/prompt list refresh failed',
        );
        return false;
      })
      .then((changed) => {
        if (changed || always) extrasChanged(orgId);
      });
  };
  const refreshThenNotify = (orgId: string, pluginKey: string, always: boolean) => {
    const p = d.registry.getByKey(pluginKey);
    if (!p) return;
    void catalog
      .refresh(orgId, p.pluginId, p.key, p.checksum)
      .catch((err: unknown) => {
        logger.debug({ orgId, pluginId: p.pluginId, err: String(err) }, 'tool list refresh failed');
        return false;
      })
      .then((changed) => {
        if (changed || always) toolsChanged(orgId);
      });
  };
  const unsubscribe: (() => void)[] = [];
  const onSettings = (e: { organizationId: string }) => listChanged(e.organizationId);
  d.settings.on('changed', onSettings);
  unsubscribe.push(() => d.settings.off('changed', onSettings));
  unsubscribe.push(d.instances.on('toolsChanged', (e) => refreshThenNotify(e.orgId, e.pluginKey, true)));
  unsubscribe.push(
    d.instances.on('resourceUpdated', (e) => {
      const p = d.registry.getByKey(e.pluginKey);
      if (p) subscriptions.updated(e.orgId, p.pluginId, e.uri, e.forOrgId);
    }),
  );
  unsubscribe.push(
    d.instances.on('extrasChanged', (e) => refreshExtrasThenNotify(e.orgId, e.pluginKey, true)),
  );
  unsubscribe.push(
    d.instances.on('state', (e) => {
      const orgOrShared = e.orgId === SHARED_INSTANCE_ORG ? undefined : e.orgId;
      // a crashed instance holding subscriptions is started again by renewing them (within its backoff)
      if (e.from === 'running' && e.to === 'failed') void subscriptions.renew(orgOrShared, e.pluginId);
      if (e.to !== 'running') return;
      refreshThenNotify(e.orgId, e.pluginKey, false);
      refreshExtrasThenNotify(e.orgId, e.pluginKey, false);
      void subscriptions.renew(orgOrShared, e.pluginId);
    }),
  );
  const onRegistry = () => {
    catalog.invalidate();
    for (const orgId of new Set([...legacy.orgIds(), ...modern.orgIds()])) listChanged(orgId);
  };
  d.registry.on('changed', onRegistry);
  d.registry.on('missing', onRegistry);
  unsubscribe.push(() => {
    d.registry.off('changed', onRegistry);
    d.registry.off('missing', onRegistry);
  });

  let closing: Promise<void> | undefined;
  return {
    store,
    catalog,
    settingsApi: {
      settings: (orgId) => store.settings(orgId),
      async configure(orgId, settings) {
        await store.setSettings(orgId, settings);
        listChanged(orgId);
        return store.settings(orgId);
      },
    },
    register(app) {
      registerMcpEndpoint(app, {
        organizations: d.organizations,
        audit: d.audit,
        logger,
        legacy,
        modern,
        allowList: d.options.allowList,
      });
    },
    start() {
      legacy.start();
    },
    close() {
      closing ??= (async () => {
        for (const u of unsubscribe) u();
        rounds.close();
        await Promise.all([legacy.close(), modern.close()]);
      })();
      return closing;
    },
  };
}
