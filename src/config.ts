import path from 'node:path';
import { parseAllowList } from './egress/policy.js';
import { ConfigError } from './errors.js';

/**
 * The host's configuration: every default lives here. `loadConfig` reads environment variables and
 * `--flag value` / `--flag=value` CLI flags (flags win), and fails with a message naming the variable.
 */
export interface HostConfig {
  host: string;
  port: number;
  dataDir: string;
  pluginsDir: string;
  /** Unset: embedded PGlite under `${dataDir}/pglite`. */
  databaseUrl: string | undefined;
  adminToken: string | undefined;
  encryptionKey: string | undefined;
  smtpUrl: string | undefined;
  logLevel: string;
  /** 'auto': human-readable (pino-pretty) when stdout is a terminal, JSON lines otherwise. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** Public base URL plugins use to reach platform APIs; defaults to http://host:port. */
  apiUrl: string | undefined;

  idleTimeoutMs: number;
  idleSweepIntervalMs: number;
  queueTimeoutMs: number;
  callTimeoutMs: number;
  startTimeoutMs: number;
  installTimeoutMs: number;
  buildTimeoutMs: number;
  /** A failed install/build is reported from memory, not re-run, for this long. */
  installRetryAfterMs: number;
  healthIntervalMs: number;
  /** A reused instance idle longer than this is pinged before the call. */
  pingBeforeReuseAfterMs: number;
  stopGraceMs: number;
  killGraceMs: number;
  crashBackoffBaseMs: number;
  crashBackoffMaxMs: number;
  defaultMaxConcurrentInstances: number;
  activityFlushIntervalMs: number;
  shutdownDrainMs: number;

  rateLimitPerMinute: number;
  rateLimitBurst: number;
  apiKeyRateLimitPerMinute: number;

  maxArgumentBytes: number;
  maxConfigurationBytes: number;
  uploadMaxBytes: number;
  uploadMaxEntries: number;
  uploadMaxUncompressedBytes: number;

  /** 'auto': use bubblewrap/cgroups when available; 'strict': refuse to run plugins without them; 'off'. */
  sandbox: 'auto' | 'strict' | 'off';
  sandboxMemoryMb: number;
  sandboxCpuPercent: number;
  sandboxMaxProcesses: number;
  sandboxMaxOpenFiles: number;
  /**
   * Operator opt-out: run uploaded (tenant) plugins even where a tenant sandbox layer (bubblewrap, non-root
   * uid, rlimit) is missing. Logged loudly at boot and shown in /healthz. Ignored by HAY_SANDBOX=strict.
   */
  allowUnsandboxedTenantCode: boolean;
  /** Registry tenant `npm install` steps fetch from (inside the sandbox). */
  npmRegistry: string;
  /** Host paths uploaded plugins' permissions.filesystem.read may lie inside (comma-separated). */
  filesystemReadAllow: string[];
  /** Plugin stderr lines logged per process and minute (burst the same); the rest are counted and dropped. */
  pluginStderrLinesPerMinute: number;
  /** Stderr lines kept per plugin process for plugins.logs (the organization's own instance only), 1..200. */
  pluginLogLines: number;

  toolCacheMaxEntries: number;
  batchConcurrency: number;
  /** Instances restored at boot (recently active pairs, manifest runtime.warmInstances); 0 disables. */
  warmupMaxInstances: number;
  platformTokenTtlMs: number;
  /** Dashboard sign-in sessions (src/web-session/) end this long after sign-in. */
  webSessionTtlMs: number;
  /** Sessions kept per API key (or for the admin token); signing in again drops the oldest beyond it. */
  webSessionMaxPerKey: number;

  /** Usage rollups are written to the database this often (and at close). */
  analyticsFlushIntervalMs: number;
  /** Usage rollups older than this are deleted. */
  analyticsRetentionDays: number;
  /** Distinct (org, plugin, version, tool, hour) rows buffered before an early flush. */
  analyticsMaxBufferedRows: number;
  /** Installed versions kept per plugin (pinned or canary versions are kept beyond this). */
  versionRetention: number;
  /** Largest plugin version (its files, before compression) kept in the database for other nodes; 0 = none. */
  versionArchiveMaxBytes: number;
  /** Watch plugins/core and plugins/custom and reload changed plugins without a restart. */
  hotReload: 'on' | 'off';
  /** Quiet time after the last file event before a changed plugin is rescanned. */
  watchDebounceMs: number;
  // Bounds on what a tenant can make the host hold or do (issue 9).
  /** Distinct (plugin, tool) metric label pairs; later new pairs are counted as `_overflow`. */
  metricsMaxSeries: number;
  /** Tool-result cache budget, all organizations together and per organization (approximate bytes). */
  toolCacheMaxBytes: number;
  toolCacheMaxBytesPerOrg: number;
  /** A tool result larger than this (JSON bytes) is refused with RESULT_TOO_LARGE. */
  maxToolResultBytes: number;
  /** A server's tools/list, all pages together: most tools and most JSON bytes. */
  maxTools: number;
  maxToolsListBytes: number;
  /** Most bytes written to a plugin process's stdin that it has not read yet; past it the process is stopped. */
  maxStdinBacklogBytes: number;
  /** Operator ceilings for manifest `runtime` settings; a manifest above one is invalid, naming it. */
  manifestMaxMemoryMb: number;
  manifestMaxCpuPercent: number;
  manifestMaxProcesses: number;
  manifestMaxOpenFiles: number;
  manifestMaxConcurrentInstances: number;
  manifestMaxIdleTimeoutMs: number;
  manifestMaxRateLimitPerMinute: number;
  manifestMaxWarmInstances: number;
  /** Failed authentications are audited as one row per source (IP + key prefix) and window. */
  authFailureWindowMs: number;
  /** Emails one organization's plugins may send per hour. */
  emailPerOrgPerHour: number;
  /** 'deny': custom (uploaded) plugins may not use the email API even if their manifest asks. */
  emailCustomPlugins: 'allow' | 'deny';
  /** Time to receive a whole request (headers and body); 408 after it. */
  httpRequestTimeoutMs: number;
  /** Socket inactivity timeout; raised to at least call + queue timeout + 10 s. */
  httpConnectionTimeoutMs: number;
  /** An expired platform token can still be exchanged at /v1/platform/token/refresh for this long. */
  platformTokenGraceMs: number;
  /**
   * Internal destinations tenant traffic may reach despite the default deny of private, loopback,
   * link-local and metadata ranges: CIDRs, addresses or host names, each with an optional :port.
   */
  egressAllow: string | undefined;
  /** Largest remote response body (or single SSE event / WebSocket frame) read for a tenant. */
  egressMaxResponseBytes: number;
  egressConnectTimeoutMs: number;
  /** `builder.test` (src/builder/): bound on one test request, its response body, and tests running per org. */
  builderTestTimeoutMs: number;
  builderTestMaxResponseBytes: number;
  builderTestsPerOrg: number;
  /** Open connections of one plugin instance through the egress proxy. */
  egressMaxConnectionsPerInstance: number;
  /** A proxied connection or tunnel without traffic for this long is closed. */
  egressIdleTimeoutMs: number;
  /** How long the egress policy reuses a host name's resolution (0 = resolve per connection). */
  egressDnsCacheMs: number;
  /** Open 2025-11-25 sessions on /mcp (all organizations), and per organization. */
  mcpMaxSessions: number;
  mcpMaxSessionsPerOrg: number;
  /** An /mcp session without a request for this long is closed. */
  mcpSessionIdleMs: number;
  /** An /mcp tool call whose plugin asked for client input (sampling, elicitation, roots) waits this long. */
  mcpInputRoundTimeoutMs: number;
  /** Requests one /mcp tool call's plugin may have waiting for client input at once; more are refused. */
  mcpMaxInputRequestsPerCall: number;
  /** Messages kept per 2025-11-25 /mcp session to resume a dropped SSE stream (Last-Event-ID). */
  mcpResumeEventsPerSession: number;
  /** Approximate bytes of those messages kept per session; the oldest are dropped past it. */
  mcpResumeBytesPerSession: number;
  /**
   * Approximate bytes of a plugin's progress and log notifications relayed on one /mcp tools/call request
   * (each input round is one request); later ones are dropped and the client is told once.
   */
  mcpMaxNotificationBytesPerCall: number;
  /** resources/subscribe a 2025-11-25 /mcp session may hold at once. */
  mcpMaxSubscriptionsPerSession: number;
  /**
   * Hostnames `/mcp` accepts in the `Host` header (DNS-rebinding protection; `*` turns the check off).
   * Empty: the listen address (plus localhost names on loopback) and the host of `apiUrl`.
   */
  mcpAllowedHosts: string[];
  /** Hostnames `/mcp` accepts in an `Origin` header (`*`: any). Empty: the same as mcpAllowedHosts. */
  mcpAllowedOrigins: string[];
  /** Outbox (src/events/): how often due deliveries are looked for, besides the kick on each publish. */
  eventsPollIntervalMs: number;
  /** A claimed delivery is held this long; after it, another node (or the restarted host) retries it. */
  eventsLeaseMs: number;
  /** One attempt (webhook request or handler tool call) is aborted after this. Must be < eventsLeaseMs. */
  eventsDeliveryTimeoutMs: number;
  /** Attempts before a delivery is dead-lettered. */
  eventsMaxAttempts: number;
  eventsBackoffBaseMs: number;
  eventsBackoffMaxMs: number;
  /** Deliveries in flight at once on this node. */
  eventsConcurrency: number;
  /** Largest event payload (JSON bytes) a plugin or an inbound request may submit. */
  eventsMaxPayloadBytes: number;
  /** Webhook endpoints per organization. */
  webhookMaxEndpoints: number;
  /** Largest inbound route body; a manifest route's maxBodyBytes can only lower it. */
  inboundMaxBodyBytes: number;
  /** Default per (org, plugin, route) rate; a manifest route's rateLimitPerMinute overrides it. */
  inboundRateLimitPerMinute: number;
  inboundRateLimitBurst: number;
  /**
   * Marketplace catalog (src/catalog/): a server.json file or a directory of them. Unset: the catalog
   * bundled with the host (`catalog/` in the package).
   */
  catalogPath: string | undefined;
  /** Optional catalog URL (server.json document or an MCP Registry `/v0.1/servers` list), read through the egress policy. */
  catalogUrl: string | undefined;
  /** Largest catalog document (local file or one URL page). */
  catalogMaxBytes: number;
  /** Bound on reading the catalog URL, all pages together. */
  catalogFetchTimeoutMs: number;
  /** A catalog read from the URL is reused this long (a failed read keeps the last good copy). */
  catalogCacheTtlMs: number;
  /** Entries kept from all catalog sources together. */
  catalogMaxEntries: number;
}

export const DEFAULTS: HostConfig = {
  host: '127.0.0.1',
  port: 3000,
  dataDir: './.hay',
  pluginsDir: './plugins',
  databaseUrl: undefined,
  adminToken: undefined,
  encryptionKey: undefined,
  smtpUrl: undefined,
  logLevel: 'info',
  logFormat: 'auto',
  apiUrl: undefined,

  idleTimeoutMs: 5 * 60_000,
  idleSweepIntervalMs: 30_000,
  queueTimeoutMs: 30_000,
  callTimeoutMs: 60_000,
  startTimeoutMs: 30_000,
  installTimeoutMs: 10 * 60_000,
  buildTimeoutMs: 5 * 60_000,
  installRetryAfterMs: 60_000,
  healthIntervalMs: 30_000,
  pingBeforeReuseAfterMs: 60_000,
  stopGraceMs: 2_000,
  killGraceMs: 2_000,
  crashBackoffBaseMs: 1_000,
  crashBackoffMaxMs: 60_000,
  defaultMaxConcurrentInstances: 10,
  activityFlushIntervalMs: 10_000,
  shutdownDrainMs: 10_000,

  rateLimitPerMinute: 600,
  rateLimitBurst: 100,
  apiKeyRateLimitPerMinute: 1200,

  maxArgumentBytes: 1024 * 1024,
  maxConfigurationBytes: 64 * 1024,
  uploadMaxBytes: 20 * 1024 * 1024,
  uploadMaxEntries: 5_000,
  uploadMaxUncompressedBytes: 100 * 1024 * 1024,

  sandbox: 'auto',
  sandboxMemoryMb: 512,
  sandboxCpuPercent: 100,
  sandboxMaxProcesses: 64,
  sandboxMaxOpenFiles: 1024,
  allowUnsandboxedTenantCode: false,
  npmRegistry: 'https://registry.npmjs.org/',
  filesystemReadAllow: [],
  pluginStderrLinesPerMinute: 600,
  pluginLogLines: 200,

  toolCacheMaxEntries: 10_000,
  batchConcurrency: 16,
  warmupMaxInstances: 20,
  platformTokenTtlMs: 60 * 60_000,
  webSessionTtlMs: 8 * 60 * 60_000,
  webSessionMaxPerKey: 20,

  analyticsFlushIntervalMs: 10_000,
  analyticsRetentionDays: 90,
  analyticsMaxBufferedRows: 10_000,
  versionRetention: 5,
  versionArchiveMaxBytes: 64 * 1024 * 1024,
  hotReload: 'on',
  watchDebounceMs: 300,
  metricsMaxSeries: 2_000,
  toolCacheMaxBytes: 64 * 1024 * 1024,
  toolCacheMaxBytesPerOrg: 16 * 1024 * 1024,
  maxToolResultBytes: 8 * 1024 * 1024,
  maxTools: 1_000,
  maxToolsListBytes: 4 * 1024 * 1024,
  maxStdinBacklogBytes: 32 * 1024 * 1024,
  manifestMaxMemoryMb: 4_096,
  manifestMaxCpuPercent: 400,
  manifestMaxProcesses: 256,
  manifestMaxOpenFiles: 8_192,
  manifestMaxConcurrentInstances: 100,
  manifestMaxIdleTimeoutMs: 60 * 60_000,
  manifestMaxRateLimitPerMinute: 6_000,
  manifestMaxWarmInstances: 10,
  authFailureWindowMs: 60_000,
  emailPerOrgPerHour: 100,
  emailCustomPlugins: 'deny',
  httpRequestTimeoutMs: 30_000,
  httpConnectionTimeoutMs: 120_000,
  platformTokenGraceMs: 10 * 60_000,
  egressAllow: undefined,
  egressMaxResponseBytes: 16 * 1024 * 1024,
  egressConnectTimeoutMs: 10_000,
  builderTestTimeoutMs: 15_000,
  builderTestMaxResponseBytes: 1024 * 1024,
  builderTestsPerOrg: 4,
  egressMaxConnectionsPerInstance: 64,
  egressIdleTimeoutMs: 60_000,
  egressDnsCacheMs: 30_000,
  mcpMaxSessions: 1_000,
  mcpMaxSessionsPerOrg: 100,
  mcpSessionIdleMs: 30 * 60_000,
  mcpInputRoundTimeoutMs: 10 * 60_000,
  mcpMaxInputRequestsPerCall: 32,
  mcpResumeEventsPerSession: 1_000,
  mcpResumeBytesPerSession: 4 * 1024 * 1024,
  mcpMaxNotificationBytesPerCall: 1024 * 1024,
  mcpMaxSubscriptionsPerSession: 100,
  mcpAllowedHosts: [],
  mcpAllowedOrigins: [],
  eventsPollIntervalMs: 1_000,
  eventsLeaseMs: 60_000,
  eventsDeliveryTimeoutMs: 15_000,
  eventsMaxAttempts: 8,
  eventsBackoffBaseMs: 1_000,
  eventsBackoffMaxMs: 15 * 60_000,
  eventsConcurrency: 8,
  eventsMaxPayloadBytes: 256 * 1024,
  webhookMaxEndpoints: 20,
  inboundMaxBodyBytes: 1024 * 1024,
  inboundRateLimitPerMinute: 600,
  inboundRateLimitBurst: 50,
  catalogPath: undefined,
  catalogUrl: undefined,
  catalogMaxBytes: 4 * 1024 * 1024,
  catalogFetchTimeoutMs: 15_000,
  catalogCacheTtlMs: 10 * 60_000,
  catalogMaxEntries: 5_000,
};

type Kind = 'string' | 'int' | 'enum' | 'bool' | 'list';
interface Field {
  key: keyof HostConfig;
  env: string;
  flag: string;
  kind: Kind;
  values?: readonly string[];
  min?: number;
  max?: number;
}

const f = (key: keyof HostConfig, env: string, kind: Kind = 'int', extra: Partial<Field> = {}): Field => ({
  key,
  env,
  flag: key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
  kind,
  ...extra,
});

const FIELDS: readonly Field[] = [
  f('host', 'HAY_HOST', 'string'),
  f('port', 'HAY_PORT', 'int', { min: 0 }),
  f('dataDir', 'HAY_DATA_DIR', 'string'),
  f('pluginsDir', 'HAY_PLUGINS_DIR', 'string'),
  f('databaseUrl', 'DATABASE_URL', 'string'),
  f('adminToken', 'HAY_ADMIN_TOKEN', 'string'),
  f('encryptionKey', 'HAY_ENCRYPTION_KEY', 'string'),
  f('smtpUrl', 'HAY_SMTP_URL', 'string'),
  f('logLevel', 'HAY_LOG_LEVEL', 'enum', {
    values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
  }),
  f('logFormat', 'HAY_LOG_FORMAT', 'enum', { values: ['auto', 'json', 'pretty'] }),
  f('apiUrl', 'HAY_API_URL', 'string'),
  f('idleTimeoutMs', 'HAY_IDLE_TIMEOUT_MS'),
  f('idleSweepIntervalMs', 'HAY_IDLE_SWEEP_INTERVAL_MS', 'int', { min: 1 }),
  f('queueTimeoutMs', 'HAY_QUEUE_TIMEOUT_MS'),
  f('callTimeoutMs', 'HAY_CALL_TIMEOUT_MS', 'int', { min: 1 }),
  f('startTimeoutMs', 'HAY_START_TIMEOUT_MS', 'int', { min: 1 }),
  f('installTimeoutMs', 'HAY_INSTALL_TIMEOUT_MS', 'int', { min: 1 }),
  f('buildTimeoutMs', 'HAY_BUILD_TIMEOUT_MS', 'int', { min: 1 }),
  f('installRetryAfterMs', 'HAY_INSTALL_RETRY_AFTER_MS'),
  f('healthIntervalMs', 'HAY_HEALTH_INTERVAL_MS', 'int', { min: 1 }),
  f('pingBeforeReuseAfterMs', 'HAY_PING_BEFORE_REUSE_AFTER_MS'),
  f('stopGraceMs', 'HAY_STOP_GRACE_MS'),
  f('killGraceMs', 'HAY_KILL_GRACE_MS'),
  f('crashBackoffBaseMs', 'HAY_CRASH_BACKOFF_BASE_MS'),
  f('crashBackoffMaxMs', 'HAY_CRASH_BACKOFF_MAX_MS'),
  f('defaultMaxConcurrentInstances', 'HAY_MAX_CONCURRENT_INSTANCES', 'int', { min: 1 }),
  f('activityFlushIntervalMs', 'HAY_ACTIVITY_FLUSH_INTERVAL_MS', 'int', { min: 1 }),
  f('shutdownDrainMs', 'HAY_SHUTDOWN_DRAIN_MS'),
  f('rateLimitPerMinute', 'HAY_RATE_LIMIT_PER_MINUTE', 'int', { min: 1 }),
  f('rateLimitBurst', 'HAY_RATE_LIMIT_BURST', 'int', { min: 1 }),
  f('apiKeyRateLimitPerMinute', 'HAY_API_KEY_RATE_LIMIT_PER_MINUTE', 'int', { min: 1 }),
  f('maxArgumentBytes', 'HAY_MAX_ARGUMENT_BYTES', 'int', { min: 1 }),
  f('maxConfigurationBytes', 'HAY_MAX_CONFIGURATION_BYTES', 'int', { min: 1 }),
  f('uploadMaxBytes', 'HAY_UPLOAD_MAX_BYTES', 'int', { min: 1 }),
  f('uploadMaxEntries', 'HAY_UPLOAD_MAX_ENTRIES', 'int', { min: 1 }),
  f('uploadMaxUncompressedBytes', 'HAY_UPLOAD_MAX_UNCOMPRESSED_BYTES', 'int', { min: 1 }),
  f('sandbox', 'HAY_SANDBOX', 'enum', { values: ['auto', 'strict', 'off'] }),
  f('sandboxMemoryMb', 'HAY_SANDBOX_MEMORY_MB', 'int', { min: 16 }),
  f('sandboxCpuPercent', 'HAY_SANDBOX_CPU_PERCENT', 'int', { min: 1 }),
  f('sandboxMaxProcesses', 'HAY_SANDBOX_MAX_PROCESSES', 'int', { min: 1 }),
  f('sandboxMaxOpenFiles', 'HAY_SANDBOX_MAX_OPEN_FILES', 'int', { min: 16 }),
  f('allowUnsandboxedTenantCode', 'HAY_ALLOW_UNSANDBOXED_TENANT_CODE', 'bool'),
  f('npmRegistry', 'HAY_NPM_REGISTRY', 'string'),
  f('filesystemReadAllow', 'HAY_FILESYSTEM_READ_ALLOW', 'list'),
  f('pluginStderrLinesPerMinute', 'HAY_PLUGIN_STDERR_LINES_PER_MINUTE', 'int', { min: 1 }),
  f('pluginLogLines', 'HAY_PLUGIN_LOG_LINES', 'int', { min: 1, max: 200 }),
  f('toolCacheMaxEntries', 'HAY_TOOL_CACHE_MAX_ENTRIES'),
  f('batchConcurrency', 'HAY_BATCH_CONCURRENCY', 'int', { min: 1 }),
  f('warmupMaxInstances', 'HAY_WARMUP_MAX_INSTANCES'),
  f('platformTokenTtlMs', 'HAY_PLATFORM_TOKEN_TTL_MS', 'int', { min: 1000 }),
  f('webSessionTtlMs', 'HAY_WEB_SESSION_TTL_MS', 'int', { min: 60_000 }),
  f('webSessionMaxPerKey', 'HAY_WEB_SESSION_MAX_PER_KEY', 'int', { min: 1 }),
  f('analyticsFlushIntervalMs', 'HAY_ANALYTICS_FLUSH_INTERVAL_MS', 'int', { min: 100 }),
  f('analyticsRetentionDays', 'HAY_ANALYTICS_RETENTION_DAYS', 'int', { min: 1 }),
  f('analyticsMaxBufferedRows', 'HAY_ANALYTICS_MAX_BUFFERED_ROWS', 'int', { min: 10 }),
  f('versionRetention', 'HAY_VERSION_RETENTION', 'int', { min: 1 }),
  f('versionArchiveMaxBytes', 'HAY_VERSION_ARCHIVE_MAX_BYTES', 'int', { min: 0 }),
  f('hotReload', 'HAY_HOT_RELOAD', 'enum', { values: ['on', 'off'] }),
  f('watchDebounceMs', 'HAY_WATCH_DEBOUNCE_MS', 'int', { min: 10 }),
  f('metricsMaxSeries', 'HAY_METRICS_MAX_SERIES', 'int', { min: 1 }),
  f('toolCacheMaxBytes', 'HAY_TOOL_CACHE_MAX_BYTES'),
  f('toolCacheMaxBytesPerOrg', 'HAY_TOOL_CACHE_MAX_BYTES_PER_ORG'),
  f('maxToolResultBytes', 'HAY_MAX_TOOL_RESULT_BYTES', 'int', { min: 1024 }),
  f('maxTools', 'HAY_MAX_TOOLS', 'int', { min: 1 }),
  f('maxToolsListBytes', 'HAY_MAX_TOOLS_LIST_BYTES', 'int', { min: 1024 }),
  f('maxStdinBacklogBytes', 'HAY_MAX_STDIN_BACKLOG_BYTES', 'int', { min: 64 * 1024 }),
  f('manifestMaxMemoryMb', 'HAY_MANIFEST_MAX_MEMORY_MB', 'int', { min: 16 }),
  f('manifestMaxCpuPercent', 'HAY_MANIFEST_MAX_CPU_PERCENT', 'int', { min: 1 }),
  f('manifestMaxProcesses', 'HAY_MANIFEST_MAX_PROCESSES', 'int', { min: 1 }),
  f('manifestMaxOpenFiles', 'HAY_MANIFEST_MAX_OPEN_FILES', 'int', { min: 16 }),
  f('manifestMaxConcurrentInstances', 'HAY_MANIFEST_MAX_CONCURRENT_INSTANCES', 'int', { min: 1 }),
  f('manifestMaxIdleTimeoutMs', 'HAY_MANIFEST_MAX_IDLE_TIMEOUT_MS'),
  f('manifestMaxRateLimitPerMinute', 'HAY_MANIFEST_MAX_RATE_LIMIT_PER_MINUTE', 'int', { min: 1 }),
  f('manifestMaxWarmInstances', 'HAY_MANIFEST_MAX_WARM_INSTANCES'),
  f('authFailureWindowMs', 'HAY_AUTH_FAILURE_WINDOW_MS', 'int', { min: 1 }),
  f('emailPerOrgPerHour', 'HAY_EMAIL_PER_ORG_PER_HOUR'),
  f('emailCustomPlugins', 'HAY_EMAIL_CUSTOM_PLUGINS', 'enum', { values: ['allow', 'deny'] }),
  f('httpRequestTimeoutMs', 'HAY_HTTP_REQUEST_TIMEOUT_MS', 'int', { min: 1 }),
  f('httpConnectionTimeoutMs', 'HAY_HTTP_CONNECTION_TIMEOUT_MS', 'int', { min: 1 }),
  f('platformTokenGraceMs', 'HAY_PLATFORM_TOKEN_GRACE_MS'),
  f('egressAllow', 'HAY_EGRESS_ALLOW', 'string'),
  f('egressMaxResponseBytes', 'HAY_EGRESS_MAX_RESPONSE_BYTES', 'int', { min: 1024 }),
  f('egressConnectTimeoutMs', 'HAY_EGRESS_CONNECT_TIMEOUT_MS', 'int', { min: 1 }),
  f('builderTestTimeoutMs', 'HAY_BUILDER_TEST_TIMEOUT_MS', 'int', { min: 100 }),
  f('builderTestMaxResponseBytes', 'HAY_BUILDER_TEST_MAX_RESPONSE_BYTES', 'int', { min: 1024 }),
  f('builderTestsPerOrg', 'HAY_BUILDER_TESTS_PER_ORG', 'int', { min: 1 }),
  f('egressMaxConnectionsPerInstance', 'HAY_EGRESS_MAX_CONNECTIONS_PER_INSTANCE', 'int', { min: 1 }),
  f('egressIdleTimeoutMs', 'HAY_EGRESS_IDLE_TIMEOUT_MS', 'int', { min: 1 }),
  f('egressDnsCacheMs', 'HAY_EGRESS_DNS_CACHE_MS', 'int', { min: 0 }),
  f('mcpMaxSessions', 'HAY_MCP_MAX_SESSIONS', 'int', { min: 1 }),
  f('mcpMaxSessionsPerOrg', 'HAY_MCP_MAX_SESSIONS_PER_ORG', 'int', { min: 1 }),
  f('mcpSessionIdleMs', 'HAY_MCP_SESSION_IDLE_MS', 'int', { min: 1000 }),
  f('mcpInputRoundTimeoutMs', 'HAY_MCP_INPUT_ROUND_TIMEOUT_MS', 'int', { min: 100 }),
  f('mcpMaxInputRequestsPerCall', 'HAY_MCP_MAX_INPUT_REQUESTS_PER_CALL', 'int', { min: 1 }),
  f('mcpResumeEventsPerSession', 'HAY_MCP_RESUME_EVENTS_PER_SESSION', 'int', { min: 0 }),
  f('mcpResumeBytesPerSession', 'HAY_MCP_RESUME_BYTES_PER_SESSION', 'int', { min: 1024 }),
  f('mcpMaxNotificationBytesPerCall', 'HAY_MCP_MAX_NOTIFICATION_BYTES_PER_CALL', 'int', { min: 1024 }),
  f('mcpMaxSubscriptionsPerSession', 'HAY_MCP_MAX_SUBSCRIPTIONS_PER_SESSION', 'int', { min: 1 }),
  f('mcpAllowedHosts', 'HAY_MCP_ALLOWED_HOSTS', 'list'),
  f('mcpAllowedOrigins', 'HAY_MCP_ALLOWED_ORIGINS', 'list'),
  f('eventsPollIntervalMs', 'HAY_EVENTS_POLL_INTERVAL_MS', 'int', { min: 10 }),
  f('eventsLeaseMs', 'HAY_EVENTS_LEASE_MS', 'int', { min: 100 }),
  f('eventsDeliveryTimeoutMs', 'HAY_EVENTS_DELIVERY_TIMEOUT_MS', 'int', { min: 10 }),
  f('eventsMaxAttempts', 'HAY_EVENTS_MAX_ATTEMPTS', 'int', { min: 1 }),
  f('eventsBackoffBaseMs', 'HAY_EVENTS_BACKOFF_BASE_MS', 'int', { min: 1 }),
  f('eventsBackoffMaxMs', 'HAY_EVENTS_BACKOFF_MAX_MS', 'int', { min: 1 }),
  f('eventsConcurrency', 'HAY_EVENTS_CONCURRENCY', 'int', { min: 1 }),
  f('eventsMaxPayloadBytes', 'HAY_EVENTS_MAX_PAYLOAD_BYTES', 'int', { min: 1 }),
  f('webhookMaxEndpoints', 'HAY_WEBHOOK_MAX_ENDPOINTS', 'int', { min: 1 }),
  f('inboundMaxBodyBytes', 'HAY_INBOUND_MAX_BODY_BYTES', 'int', { min: 1 }),
  f('inboundRateLimitPerMinute', 'HAY_INBOUND_RATE_LIMIT_PER_MINUTE', 'int', { min: 1 }),
  f('inboundRateLimitBurst', 'HAY_INBOUND_RATE_LIMIT_BURST', 'int', { min: 1 }),
  f('catalogPath', 'HAY_CATALOG_PATH', 'string'),
  f('catalogUrl', 'HAY_CATALOG_URL', 'string'),
  f('catalogMaxBytes', 'HAY_CATALOG_MAX_BYTES', 'int', { min: 1024 }),
  f('catalogFetchTimeoutMs', 'HAY_CATALOG_FETCH_TIMEOUT_MS', 'int', { min: 100 }),
  f('catalogCacheTtlMs', 'HAY_CATALOG_CACHE_TTL_MS'),
  f('catalogMaxEntries', 'HAY_CATALOG_MAX_ENTRIES', 'int', { min: 1 }),
];

function parseArgs(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a?.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`flag ${a} needs a value`);
      out.set(a.slice(2), next);
      i++;
    }
  }
  return out;
}

/**
 * Builds the configuration from defaults, then env, then CLI flags, then `overrides` (tests).
 * Throws ConfigError naming the variable or flag for any bad value or unknown flag.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = [],
  overrides: Partial<HostConfig> = {},
): HostConfig {
  const cfg: HostConfig = { ...DEFAULTS };
  const record = cfg as unknown as Record<string, unknown>;
  const flags = parseArgs(argv);
  const known = new Set(FIELDS.map((x) => x.flag));
  for (const name of flags.keys()) if (!known.has(name)) throw new ConfigError(`unknown flag --${name}`);
  for (const field of FIELDS) {
    const fromFlag = flags.get(field.flag);
    const raw = fromFlag ?? env[field.env];
    if (raw === undefined || raw === '') continue;
    const source = fromFlag !== undefined ? `--${field.flag}` : field.env;
    record[field.key] = parseValue(field, raw, source);
  }
  Object.assign(cfg, overrides);
  cfg.dataDir = path.resolve(cfg.dataDir);
  cfg.pluginsDir = path.resolve(cfg.pluginsDir);
  if (cfg.crashBackoffMaxMs < cfg.crashBackoffBaseMs)
    throw new ConfigError('HAY_CRASH_BACKOFF_MAX_MS must be >= HAY_CRASH_BACKOFF_BASE_MS');
  if (!/^https?:\/\/[^/]+/.test(cfg.npmRegistry))
    throw new ConfigError(`HAY_NPM_REGISTRY must be an http(s) URL; got "${cfg.npmRegistry}"`);
  for (const p of cfg.filesystemReadAllow)
    if (!path.isAbsolute(p))
      throw new ConfigError(`HAY_FILESYSTEM_READ_ALLOW entries must be absolute paths; got "${p}"`);
  if (cfg.eventsDeliveryTimeoutMs >= cfg.eventsLeaseMs)
    throw new ConfigError('HAY_EVENTS_DELIVERY_TIMEOUT_MS must be < HAY_EVENTS_LEASE_MS');
  if (cfg.eventsBackoffMaxMs < cfg.eventsBackoffBaseMs)
    throw new ConfigError('HAY_EVENTS_BACKOFF_MAX_MS must be >= HAY_EVENTS_BACKOFF_BASE_MS');
  if (cfg.catalogUrl !== undefined && !/^https?:\/\/[^/]+/.test(cfg.catalogUrl))
    throw new ConfigError(`HAY_CATALOG_URL must be an http(s) URL; got "${cfg.catalogUrl}"`);
  if (cfg.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(cfg.databaseUrl))
    throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://');
  try {
    parseAllowList(cfg.egressAllow);
  } catch (err) {
    throw new ConfigError(`HAY_EGRESS_ALLOW: ${err instanceof Error ? err.message : String(err)}`);
  }
  return cfg;
}

function parseValue(field: Field, raw: string, source: string): string | number | boolean | string[] {
  switch (field.kind) {
    case 'string':
      return raw;
    case 'bool':
      if (['1', 'true'].includes(raw)) return true;
      if (['0', 'false'].includes(raw)) return false;
      throw new ConfigError(`${source} must be 1, true, 0 or false; got "${raw}"`);
    case 'list':
      return raw
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
    case 'enum':
      if (!field.values?.includes(raw))
        throw new ConfigError(`${source} must be one of ${field.values?.join(', ')}; got "${raw}"`);
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw)) throw new ConfigError(`${source} must be a non-negative integer; got "${raw}"`);
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) throw new ConfigError(`${source} is too large: "${raw}"`);
      if (field.min !== undefined && n < field.min)
        throw new ConfigError(`${source} must be >= ${field.min}; got ${n}`);
      if (field.max !== undefined && n > field.max)
        throw new ConfigError(`${source} must be <= ${field.max}; got ${n}`);
      if (field.key === 'port' && n > 65535) throw new ConfigError(`${source} must be <= 65535; got ${n}`);
      return n;
    }
  }
}

/** Environment variable and flag names, for `--help`. */
export function describeConfig(): { env: string; flag: string; default: unknown }[] {
  return FIELDS.map((x) => ({ env: x.env, flag: `--${x.flag}`, default: DEFAULTS[x.key] }));
}
