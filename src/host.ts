import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from './api/http-server.js';
import { registerPlatformRoutes } from './api/platform-routes.js';
import { registerUploadRoutes } from './api/upload-routes.js';
import type { ApiServices } from './api/trpc.js';
import { AuditLog } from './audit/audit-log.js';
import { wireAuth } from './auth/wiring.js';
import { noCodeRuntimePackage, wireBuilder } from './builder/wiring.js';
import { wireCatalog } from './catalog/wiring.js';
import type { HostConfig } from './config.js';
import { openDatabase, type Database } from './db/database.js';
import { wireEgress } from './egress/wiring.js';
import { PluginService } from './invocation/plugin-service.js';
import { dependencyProblems } from './lifecycle/dependencies.js';
import { versionedPreparer, versionsRoot, wireLifecycle } from './lifecycle/wiring.js';
import { ToolArgumentValidator } from './invocation/tool-arguments.js';
import { ToolResultCache } from './invocation/tool-cache.js';
import { createLogger, type Logger } from './logger.js';
import { ManifestValidator, manifestSchemaPath } from './manifest/validator.js';
import { Metrics } from './observability/metrics.js';
import { packageRoot } from './paths.js';
import { wireGateway, type Gateway } from './gateway/wiring.js';
import { mcpHostAllowList } from './gateway/host-check.js';
import { wireEvents } from './events/wiring.js';
import { createEmailApi } from './platform/email-api.js';
import type { PlatformApi } from './platform/platform-api.js';
import { PlatformQuotas } from './platform/quotas.js';
import { HOST_PACKAGES, HostPackages } from './registry/host-packages.js';
import { PluginInstaller } from './registry/installer.js';
import { PluginRegistry } from './registry/plugin-registry.js';
import { PluginUploadService } from './registry/uploads.js';
import { McpConnectionFactory } from './runtime/client/connection-factory.js';
import { InstanceManager } from './runtime/instance/index.js';
import { PluginEnvironment } from './runtime/plugin-env.js';
import { ProcessManager } from './runtime/process/process-manager.js';
import { wireSandbox } from './runtime/sandbox/wiring.js';
import { InstanceWarmup } from './runtime/warmup.js';
import { resolveAdminToken } from './security/admin-token.js';
import { KeyRing } from './security/key-ring.js';
import { PlatformTokens } from './security/platform-token.js';
import { DbTokenRevocations } from './security/token-revocations.js';
import { RateLimiter } from './security/rate-limiter.js';
import { rotateKeys } from './security/key-rotation.js';
import { SecretBox } from './security/secret-box.js';
import { OrganizationService } from './tenancy/organizations.js';
import { wireWeb } from './web-session/wiring.js';
import { PluginSettingsService } from './tenancy/plugin-settings.js';

export interface Host {
  readonly config: HostConfig;
  readonly logger: Logger;
  /** Base URL once listening, e.g. http://127.0.0.1:3000. */
  readonly url: string;
  readonly adminToken: string;
  readonly services: HostServices;
  /** Scans plugins, starts the runtime and listens. Idempotent. */
  start(): Promise<void>;
  /** Stops intake, drains calls, stops instances, closes the database. Idempotent. */
  close(): Promise<void>;
  /** New current encryption key; every stored secret re-encrypted; unused old keys retired. */
  rotateKeys(): Promise<{ reencrypted: number; keyId: string }>;
}

export interface HostServices {
  database: Database;
  registry: PluginRegistry;
  installer: PluginInstaller;
  instances: InstanceManager;
  processes: ProcessManager;
  organizations: OrganizationService;
  settings: PluginSettingsService;
  plugins: PluginService;
  audit: AuditLog;
  metrics: Metrics;
  keyRing: KeyRing;
  http: FastifyInstance;
  warmup: InstanceWarmup;
  gateway: Gateway;
}

/**
 * The composition root: builds every service from `config` and wires them. Nothing else in src/
 * constructs services. `extra.logger` lets tests capture logs.
 */
export async function createHost(
  config: HostConfig,
  extra: { logger?: Logger; hostEnv?: NodeJS.ProcessEnv; hideSandboxLayers?: readonly string[] } = {},
): Promise<Host> {
  const logger = extra.logger ?? createLogger({ level: config.logLevel });
  const hostEnv = extra.hostEnv ?? process.env;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });

  const admin = await resolveAdminToken(config.adminToken, config.dataDir);
  if (admin.source !== 'env')
    logger.info({ file: admin.file }, 'admin token is in this file (HAY_ADMIN_TOKEN not set)');

  const keyRing = await KeyRing.load({ dataDir: config.dataDir, envKey: config.encryptionKey, logger });
  const box = new SecretBox(keyRing);

  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const db = database.db;
  const tokens = new PlatformTokens({
    secret: keyRing.deriveKey('platform-token'),
    ttlMs: config.platformTokenTtlMs,
    graceMs: config.platformTokenGraceMs,
    revocations: new DbTokenRevocations(db),
  });
  let schemaPath = manifestSchemaPath(config.pluginsDir);
  if (!existsSync(schemaPath)) schemaPath = manifestSchemaPath(path.join(packageRoot(), 'plugins'));
  const validator = new ManifestValidator(schemaPath, {
    memoryMb: config.manifestMaxMemoryMb,
    cpuPercent: config.manifestMaxCpuPercent,
    maxProcesses: config.manifestMaxProcesses,
    maxOpenFiles: config.manifestMaxOpenFiles,
    maxConcurrentInstances: config.manifestMaxConcurrentInstances,
    idleTimeoutMs: config.manifestMaxIdleTimeoutMs,
    rateLimitPerMinute: config.manifestMaxRateLimitPerMinute,
    warmInstances: config.manifestMaxWarmInstances,
  });
  const registry = new PluginRegistry({
    db,
    logger: logger.child({ component: 'registry' }),
    pluginsDir: config.pluginsDir,
    validator,
    defaultMaxConcurrentInstances: config.defaultMaxConcurrentInstances,
    crossCheck: dependencyProblems,
    // staging of changed versions finishes before a scan resolves (lifecycle is built below)
    afterScan: () => lifecycle.versions.afterScan(),
    // the host's own install/build writes are no change of the plugin (the installer is built below)
    writtenBySteps: (key: string, checksum: string, found: string): boolean =>
      installer.writtenBySteps(key, checksum, found),
  });
  const audit = new AuditLog(db, logger.child({ component: 'audit' }), {
    flushIntervalMs: 500,
    maxBuffered: 500,
    authFailureWindowMs: config.authFailureWindowMs,
  });
  const organizations = new OrganizationService(db, admin.token);
  const settings = new PluginSettingsService(db, box);
  // a disabled plugin's running instance loses its platform API access at once
  settings.on('changed', (e) => {
    if (!e.enabled)
      tokens.revoke(e.organizationId, e.pluginKey).catch((err: unknown) =>
        logger.error(
          {
            orgId: e.organizationId,
            pluginKey: e.pluginKey,
            err: err instanceof Error ? err.message : String(err),
          },
          'platform token revocation failed',
        ),
      );
  });

  // collectors read `instances` and `registry` at scrape time, after both exist
  const metrics = new Metrics(
    {
      activeInstances: () => {
        const counts = new Map<string, number>();
        for (const i of instances.listInstances())
          if (i.state === 'running') counts.set(i.pluginId, (counts.get(i.pluginId) ?? 0) + 1);
        return [...counts].map(([plugin, count]) => ({ plugin, count }));
      },
      queueDepth: () =>
        registry
          .listAll()
          .map((p) => ({ plugin: p.pluginId, depth: instances.queueDepth(p.key) }))
          .filter((q) => q.depth > 0),
      usage: async () =>
        (await instances.usage()).instances.map((u) => ({
          plugin: u.pluginId,
          instance: String(u.pid ?? 'remote'),
          rssBytes: u.rssBytes,
          cpuSeconds: u.cpuSeconds,
        })),
    },
    { maxSeries: config.metricsMaxSeries },
  );
  const noCodeRuntime = noCodeRuntimePackage(packageRoot());
  const hostPackages = new HostPackages(
    [
      ...HostPackages.resolve(HOST_PACKAGES, packageRoot(), logger).list(),
      ...(noCodeRuntime ? [noCodeRuntime] : []),
    ],
    logger.child({ component: 'installer' }),
  );
  const sandboxing = await wireSandbox(config, {
    logger: logger.child({ component: 'sandbox' }),
    hostEnv,
    extraReadOnlyPaths: hostPackages.list().map((p) => p.dir),
    ...(extra.hideSandboxLayers ? { hideLayers: extra.hideSandboxLayers } : {}),
  });
  const sandbox = sandboxing.sandbox;
  const installer = new PluginInstaller({
    ...sandboxing.tenantInstall,
    // tenant install steps reach only the npm registry, through the egress proxy (built below)
    egress: { local: (orgId, spec) => egress.plugins.local(orgId, spec) },
    registry,
    logger: logger.child({ component: 'installer' }),
    installTimeoutMs: config.installTimeoutMs,
    buildTimeoutMs: config.buildTimeoutMs,
    killGraceMs: config.killGraceMs,
    retryFailedAfterMs: config.installRetryAfterMs,
    env: installEnv(hostEnv),
    onPhaseDone: (e) =>
      metrics.installDuration.observe(
        { plugin: e.pluginId, phase: e.phase, outcome: e.ok ? 'ok' : 'error' },
        e.durationMs / 1000,
      ),
    onProgress: progressLogger(logger.child({ component: 'installer' }), 2_000),
    afterInstall: async (plugin) => void (await hostPackages.linkPeers(plugin.dir)),
  });

  const layers = sandbox.describe();
  logger.info({ active: layers.active }, 'sandbox layers active');
  for (const u of layers.unavailable)
    logger.warn({ layer: u.layer, reason: u.reason }, 'sandbox layer unavailable');

  const processes = new ProcessManager({
    logger: logger.child({ component: 'process' }),
    sandbox,
    stopGraceMs: config.stopGraceMs,
    killGraceMs: config.killGraceMs,
    stderrLinesPerMinute: config.pluginStderrLinesPerMinute,
    logLines: config.pluginLogLines,
    onStderrDropped: (e) => metrics.stderrDropped.inc({ plugin: metrics.labels(e.pluginId).plugin }, e.lines),
  });
  let listenUrl = `http://${config.host}:${config.port}`;
  const egress = wireEgress({
    config,
    logger: logger.child({ component: 'egress' }),
    platformTarget: () => {
      const u = new URL(listenUrl);
      return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port) };
    },
  });
  const environment = new PluginEnvironment({
    settings,
    tokens,
    get apiUrl() {
      return config.apiUrl ?? listenUrl;
    },
    hostEnv,
    operatorAllowedEnv: [],
    dataDirFor: (orgId, spec) => path.join(config.dataDir, 'plugin-data', orgId, spec.pluginId),
    get credentials() {
      return pluginAuth.credentials;
    },
  });
  const pluginAuth = wireAuth({
    db,
    box,
    audit,
    logger: logger.child({ component: 'plugin-auth' }),
    registry,
    settings,
    publicUrl: () => config.apiUrl ?? listenUrl,
    remoteUrl: (orgId, spec) => environment.remoteUrl(orgId, spec),
    guardedFetch: (orgId, spec, fromConfiguration) =>
      egress.plugins.remote(orgId, spec, { fromConfiguration })?.fetch(),
    restartInstance: (orgId, pluginKey, reason) => instances.stopInstance(orgId, pluginKey, reason),
  });
  const connections = new McpConnectionFactory({
    logger: logger.child({ component: 'mcp' }),
    processes,
    env: environment,
    remote: environment,
    limits: {
      memoryMb: config.sandboxMemoryMb,
      cpuPercent: config.sandboxCpuPercent,
      maxProcesses: config.sandboxMaxProcesses,
      maxOpenFiles: config.sandboxMaxOpenFiles,
    },
    callTimeoutMs: config.callTimeoutMs,
    maxStdinBacklogBytes: config.maxStdinBacklogBytes,
    responseLimits: {
      maxResultBytes: config.maxToolResultBytes,
      maxTools: config.maxTools,
      maxToolsListBytes: config.maxToolsListBytes,
    },
    egress: egress.plugins,
    authorizationRequired: pluginAuth.authorizationRequired,
  });
  const instances = new InstanceManager({
    logger: logger.child({ component: 'instances' }),
    connections,
    preparer: versionedPreparer(installer, versionsRoot(config)),
    activity: settings,
    callMeta: environment,
    options: {
      idleTimeoutMs: config.idleTimeoutMs,
      idleSweepIntervalMs: config.idleSweepIntervalMs,
      queueTimeoutMs: config.queueTimeoutMs,
      callTimeoutMs: config.callTimeoutMs,
      startTimeoutMs: config.startTimeoutMs,
      healthIntervalMs: config.healthIntervalMs,
      pingBeforeReuseAfterMs: config.pingBeforeReuseAfterMs,
      crashBackoffBaseMs: config.crashBackoffBaseMs,
      crashBackoffMaxMs: config.crashBackoffMaxMs,
      activityFlushIntervalMs: config.activityFlushIntervalMs,
      shutdownDrainMs: config.shutdownDrainMs,
    },
  });

  instances.on('state', (e) => {
    metrics.observeInstanceState(e);
    // one count per end of a process: failed -> stopped is bookkeeping of an end already counted
    if (e.to === 'failed' || (e.to === 'stopped' && e.from !== 'failed'))
      metrics.instanceStops.inc({ plugin: e.pluginId, cause: stopCause(e.reason) });
    if (e.to === 'failed' && e.reason.includes('killed by the sandbox'))
      audit.record({
        organizationId: e.orgId,
        actor: 'system',
        action: 'instance.killed',
        pluginId: e.pluginId,
        outcome: 'error',
        details: { reason: e.reason },
      });
  });

  const warmup = new InstanceWarmup({
    db,
    logger: logger.child({ component: 'warmup' }),
    instances,
    registry: {
      specByKey: (key) => {
        const p = registry.getByKey(key);
        return p ? registry.toSpec(p) : undefined;
      },
    },
    options: {
      idleTimeoutMs: config.idleTimeoutMs,
      maxInstances: config.warmupMaxInstances,
      concurrency: 2,
      timeoutMs: config.startTimeoutMs,
    },
  });

  const lifecycle = wireLifecycle({
    config,
    db,
    logger,
    registry,
    settings,
    instances,
    audit,
    installer,
    connections,
  });
  const plugins = new PluginService({
    logger,
    registry,
    settings,
    instances,
    validator: new ToolArgumentValidator(),
    cache: new ToolResultCache(config.toolCacheMaxEntries, Date.now, {
      maxBytes: config.toolCacheMaxBytes,
      maxBytesPerOrg: config.toolCacheMaxBytesPerOrg,
    }),
    audit,
    metrics,
    pluginLimiter: new RateLimiter({
      ratePerMinute: config.rateLimitPerMinute,
      burst: config.rateLimitBurst,
      resolve: (key) => {
        const p = registry.getByKey(key.split('\u0000')[1] ?? '');
        const rate = p?.manifest?.runtime?.rateLimitPerMinute;
        return rate
          ? { ratePerMinute: rate, burst: Math.max(1, Math.min(config.rateLimitBurst, rate)) }
          : undefined;
      },
    }),
    keyLimiter: new RateLimiter({
      ratePerMinute: config.apiKeyRateLimitPerMinute,
      burst: config.rateLimitBurst,
    }),
    installs: installer,
    options: {
      callTimeoutMs: config.callTimeoutMs,
      batchConcurrency: config.batchConcurrency,
      enabledCacheMs: 5_000,
    },
    onCallFinished: lifecycle.onCallFinished,
    guard: lifecycle.dependencies,
    versions: lifecycle.versions,
  });

  const events = wireEvents({
    config,
    db,
    box,
    logger,
    registry,
    settings,
    plugins,
    audit,
    metricsRegistry: metrics.registry,
    publicUrl: () => config.apiUrl ?? listenUrl,
    hostPolicy: egress.policy,
  });

  const platformApis: PlatformApi[] = [
    events.platformApi,
    createEmailApi({
      smtpUrl: config.smtpUrl,
      from: 'Hay <no-reply@hay.local>',
      logger: logger.child({ api: 'email' }),
      timeoutMs: 15_000,
    }),
  ];

  const uploads = new PluginUploadService({
    db,
    logger: logger.child({ component: 'uploads' }),
    pluginsDir: config.pluginsDir,
    registry,
    validator,
    instances,
    audit,
    limits: {
      maxCompressedBytes: config.uploadMaxBytes,
      maxEntries: config.uploadMaxEntries,
      maxUncompressedBytes: config.uploadMaxUncompressedBytes,
    },
    extractTimeoutMs: 60_000,
    readPaths: sandboxing.readPaths,
  });

  const builder = wireBuilder({
    config,
    logger,
    audit,
    registry,
    uploads,
    versions: async (orgId, pluginId) =>
      (await lifecycle.api.versions(orgId, pluginId)).versions.map((v) => v.version),
    storedConfiguration: async (orgId, pluginId) => {
      const p = registry.get(orgId, pluginId);
      if (p?.sourceType !== 'custom' || p.organizationId !== orgId || !p.manifest) return undefined;
      if (!(await settings.isEnabled(orgId, p.key))) return undefined;
      return settings.runtimeValues(orgId, p.key, p.manifest.configSchema ?? {});
    },
    policy: egress.policy,
    runtime: noCodeRuntime,
  });

  const catalog = wireCatalog({
    config,
    logger,
    policy: egress.policy,
    registry,
    uploads,
    assertTenantAllowed: (pluginId) => sandbox.assertTenantAllowed(pluginId),
  });

  const bodyLimitBytes = Math.max(config.maxArgumentBytes * 2, 2 * 1024 * 1024);
  const gateway = wireGateway({
    db,
    logger,
    organizations,
    plugins,
    settings,
    instances,
    registry,
    audit,
    metricsRegistry: metrics.registry,
    options: {
      listTimeoutMs: config.startTimeoutMs,
      maxSessions: config.mcpMaxSessions,
      maxSessionsPerOrg: config.mcpMaxSessionsPerOrg,
      sessionIdleMs: config.mcpSessionIdleMs,
      inputRoundTimeoutMs: config.mcpInputRoundTimeoutMs,
      maxInputRequestsPerCall: config.mcpMaxInputRequestsPerCall,
      maxResumeEventsPerSession: config.mcpResumeEventsPerSession,
      maxResumeBytesPerSession: config.mcpResumeBytesPerSession,
      maxNotificationBytesPerCall: config.mcpMaxNotificationBytesPerCall,
      maxSubscriptionsPerSession: config.mcpMaxSubscriptionsPerSession,
      allowList: mcpHostAllowList({
        listenHost: config.host,
        apiUrl: config.apiUrl,
        allowedHosts: config.mcpAllowedHosts,
        allowedOrigins: config.mcpAllowedOrigins,
      }),
      maxRequestBodyBytes: bodyLimitBytes,
    },
  });
  const web = wireWeb({
    db,
    logger,
    organizations,
    audit,
    adminToken: admin.token,
    options: {
      sessionTtlMs: config.webSessionTtlMs,
      sessionMaxPerKey: config.webSessionMaxPerKey,
      publicUrl: config.apiUrl,
    },
  });
  const services: ApiServices = {
    logger,
    sessions: web.sessions,
    organizations,
    plugins,
    audit,
    gateway: gateway.settingsApi,
    lifecycle: lifecycle.api,
    events: events.service,
    pluginAuth: pluginAuth.api,
    builder: builder.service,
    catalog: catalog.service,
    admin: {
      rotateKeys: () => rotateKeys(keyRing, box, settings, audit, [events.secrets, pluginAuth.secrets]),
      uninstallPlugin: async (orgId, pluginId, actor) => {
        const key = registry.get(orgId, pluginId)?.key;
        const out = await uploads.uninstall(orgId, pluginId, actor);
        if (key !== undefined) await tokens.revoke(orgId, key);
        return out;
      },
      rollbackPlugin: (orgId, pluginId, actor) => uploads.rollback(orgId, pluginId, actor),
      health: async () => {
        const byState: Record<string, number> = {};
        for (const i of instances.listInstances()) byState[i.state] = (byState[i.state] ?? 0) + 1;
        return {
          sandbox: sandboxing.health(),
          database: database.kind,
          instances: byState,
          queueDepth: instances.queueDepth(),
          plugins: registry.list(null).length,
        };
      },
    },
  };
  let ready = false;
  const http = createHttpServer({
    services,
    metrics,
    organizations,
    bodyLimitBytes,
    requestTimeoutMs: config.httpRequestTimeoutMs,
    connectionTimeoutMs: Math.max(
      config.httpConnectionTimeoutMs,
      config.callTimeoutMs + config.queueTimeoutMs + 10_000,
    ),
    isReady: () => ready,
    health: () => ({ sandbox: sandboxing.health() }),
    register: (app) => {
      gateway.register(app);
      registerPlatformRoutes(app, {
        apis: platformApis,
        tokens,
        audit,
        metrics,
        logger,
        quotas: new PlatformQuotas({
          perOrgPerHour: { email: config.emailPerOrgPerHour },
          variables: { email: 'HAY_EMAIL_PER_ORG_PER_HOUR' },
        }),
        deniedToCustom:
          config.emailCustomPlugins === 'allow' ? {} : { email: 'HAY_EMAIL_CUSTOM_PLUGINS=allow' },
        isCustom: (key) => registry.getByKey(key)?.sourceType === 'custom',
      });
      events.register(app);
      pluginAuth.registerRoutes(app);
      registerUploadRoutes(app, {
        organizations,
        uploads,
        audit,
        logger,
        uploadsDir: path.join(config.dataDir, 'uploads'),
        maxBytes: config.uploadMaxBytes,
        sessions: web.sessions,
      });
      web.register(app);
    },
  });

  let starting: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const host: Host = {
    config,
    logger,
    get url() {
      return listenUrl;
    },
    adminToken: admin.token,
    rotateKeys: services.admin.rotateKeys,
    services: {
      database,
      registry,
      installer,
      instances,
      processes,
      organizations,
      settings,
      plugins,
      audit,
      metrics,
      keyRing,
      http,
      warmup,
      gateway,
    },
    start() {
      starting ??= (async () => {
        await uploads.repair();
        const report = await registry.scan();
        logger.info(
          {
            plugins: report.plugins,
            ok: report.ok,
            invalid: report.invalid.length,
            skipped: report.skipped.length,
            durationMs: report.durationMs,
          },
          'plugin discovery finished',
        );
        await pluginAuth.start();
        await processes.start();
        instances.start();
        await http.listen({ host: config.host, port: config.port });
        const addr = http.server.address() as AddressInfo;
        listenUrl = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
        gateway.start();
        await lifecycle.start();
        ready = true;
        logger.info({ url: listenUrl }, 'hay plugin host listening');
        warmup.start();
        events.start();
      })();
      return starting;
    },
    close() {
      closing ??= (async () => {
        ready = false;
        await starting?.catch(() => undefined);
        await gateway.close();
        const httpClosed = http.close();
        const drained = await Promise.race([
          httpClosed.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), config.shutdownDrainMs).unref()),
        ]);
        if (!drained)
          logger.warn('in-flight requests still running after the drain period; stopping instances');
        await warmup.close();
        await events.close();
        await instances.close();
        await processes.close();
        await egress.close();
        await catalog.close();
        await httpClosed;
        for (const api of platformApis) await api.close?.();
        await lifecycle.close();
        await pluginAuth.close();
        await audit.close();
        await database.close();
        logger.info('hay plugin host stopped');
      })();
      return closing;
    },
  };
  return host;
}

/**
 * Progress of long installs/builds at info level: at most one output line per plugin and phase every
 * `everyMs` (every line is at debug level already).
 */
function progressLogger(logger: Logger, everyMs: number) {
  const last = new Map<string, number>();
  return (e: { pluginId: string; phase: 'install' | 'build'; line: string }) => {
    const key = `${e.pluginId}:${e.phase}`;
    const now = Date.now();
    if (now - (last.get(key) ?? 0) < everyMs) return;
    last.set(key, now);
    logger.info(
      { pluginId: e.pluginId, phase: e.phase, line: e.line.slice(0, 300) },
      `plugin ${e.phase} in progress`,
    );
  };
}

function installEnv(hostEnv: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(hostEnv)) {
    if (v === undefined) continue;
    if (
      ['PATH', 'HOME', 'LANG', 'TMPDIR', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'].includes(k) ||
      k.startsWith('npm_config_')
    )
      out[k] = v;
  }
  return out;
}

function stopCause(reason: string): string {
  const causes = [
    'idle',
    'crash',
    'limit',
    'timeout',
    'evict',
    'disabled',
    'changed',
    'shutdown',
    'unhealthy',
    'health',
    'missing',
    'configuration',
  ];
  const r = reason.toLowerCase();
  return causes.find((c) => r.includes(c)) ?? 'other';
}
