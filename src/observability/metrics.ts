import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Outcome label values; a bounded set. */
export type CallOutcome =
  'ok' | 'tool_error' | 'error' | 'timeout' | 'rate_limited' | 'capacity' | 'invalid' | 'cached';

/** Label value for a plugin or tool the caller named but the host does not know. */
export const UNKNOWN_LABEL = 'unknown';
/** Label value of (plugin, tool) pairs admitted after the series ceiling was reached. */
export const OVERFLOW_LABEL = '_overflow';

export interface MetricsOptions {
  /**
   * Most distinct (plugin, tool) label pairs tracked across the per-plugin metrics; later new pairs are
   * counted under `_overflow` and in `hay_metrics_series_overflow_total`. Config `metricsMaxSeries`.
   */
  maxSeries: number;
}

/**
 * The host's Prometheus metrics on a private registry (no global state). Label values are bounded:
 * callers pass only registered plugin ids and listed tool names (else `unknown`), tool names are cut to
 * 64 chars, outcomes are an enum, and distinct (plugin, tool) pairs stop at `maxSeries` (then `_overflow`).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly seriesOverflow = new Counter({
    name: 'hay_metrics_series_overflow_total',
    help: 'Observations whose new (plugin, tool) labels were collapsed into _overflow by the series ceiling',
    registers: [this.registry],
  });
  readonly toolCalls = new Counter({
    name: 'hay_tool_invocations_total',
    help: 'Tool invocations by plugin, tool and outcome',
    labelNames: ['plugin', 'tool', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly toolLatency = new Histogram({
    name: 'hay_tool_invocation_duration_seconds',
    help: 'Tool invocation latency in seconds (host side, end to end)',
    labelNames: ['plugin', 'tool'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly instanceStartup = new Histogram({
    name: 'hay_instance_startup_duration_seconds',
    help: 'Time from start request to MCP initialized',
    labelNames: ['plugin'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly instanceStops = new Counter({
    name: 'hay_instance_stops_total',
    help: 'Instance stops by cause (idle, crash, limit, timeout, evicted, disabled, changed, shutdown, unhealthy)',
    labelNames: ['plugin', 'cause'] as const,
    registers: [this.registry],
  });
  readonly installDuration = new Histogram({
    name: 'hay_plugin_prepare_duration_seconds',
    help: 'Install and build durations',
    labelNames: ['plugin', 'phase', 'outcome'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'hay_rate_limited_total',
    help: 'Calls refused by rate limits',
    labelNames: ['plugin', 'scope'] as const,
    registers: [this.registry],
  });
  readonly cacheLookups = new Counter({
    name: 'hay_tool_cache_lookups_total',
    help: 'Tool-result cache lookups by result (hit, miss)',
    labelNames: ['plugin', 'result'] as const,
    registers: [this.registry],
  });
  readonly permissionDenied = new Counter({
    name: 'hay_permission_denied_total',
    help: 'Platform API calls refused for a missing permission',
    labelNames: ['plugin', 'api'] as const,
    registers: [this.registry],
  });

  /** Plugin stderr lines over the per-process budget (label: registered plugin id). */
  readonly stderrDropped = new Counter({
    name: 'hay_plugin_stderr_dropped_lines_total',
    help: 'Plugin stderr lines dropped by the per-process rate limit',
    labelNames: ['plugin'] as const,
    registers: [this.registry],
  });

  private readonly cacheTallies = new Map<string, { hits: number; lookups: number }>();
  private readonly startingSince = new Map<string, number>();
  /** Admitted (plugin, tool) pairs, `plugin\u0000tool`; tool '' for per-plugin metrics. */
  private readonly series = new Set<string>();
  private readonly maxSeries: number;

  constructor(
    collect: {
      activeInstances: () => { plugin: string; count: number }[];
      queueDepth: () => { plugin: string; depth: number }[];
      usage: () => Promise<{ plugin: string; instance: string; rssBytes: number; cpuSeconds: number }[]>;
    },
    options: MetricsOptions = { maxSeries: 2_000 },
  ) {
    this.maxSeries = options.maxSeries;
    collectDefaultMetrics({ register: this.registry, prefix: 'hay_host_' });
    const tallies = this.cacheTallies;
    new Gauge({
      name: 'hay_tool_cache_hit_ratio',
      help: 'Tool-result cache hits / lookups since boot, per plugin (cached tools only)',
      labelNames: ['plugin'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [plugin, t] of tallies) this.set({ plugin }, t.lookups ? t.hits / t.lookups : 0);
      },
    });
    new Gauge({
      name: 'hay_active_instances',
      help: 'Running instances per plugin',
      labelNames: ['plugin'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { plugin, count } of collect.activeInstances()) this.set({ plugin }, count);
      },
    });
    new Gauge({
      name: 'hay_active_instances_total',
      help: 'Running instances across all plugins',
      registers: [this.registry],
      collect() {
        this.set(collect.activeInstances().reduce((n, x) => n + x.count, 0));
      },
    });
    new Gauge({
      name: 'hay_queue_depth',
      help: 'Requests waiting for a pool slot, per plugin',
      labelNames: ['plugin'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { plugin, depth } of collect.queueDepth()) this.set({ plugin }, depth);
      },
    });
    // memory and CPU come from one process-tree read per scrape, shared by both gauges (prom-client runs
    // collect functions concurrently, so a scrape reuses a read younger than one second)
    let usageRead: { at: number; rows: ReturnType<typeof collect.usage> } | undefined;
    const usage = () => {
      const now = performance.now();
      if (!usageRead || now - usageRead.at > 1000) usageRead = { at: now, rows: collect.usage() };
      return usageRead.rows;
    };
    new Gauge({
      name: 'hay_instance_memory_bytes',
      help: 'Resident memory per instance (process tree)',
      labelNames: ['plugin', 'instance'] as const,
      registers: [this.registry],
      async collect() {
        const rows = await usage();
        this.reset();
        for (const u of rows) this.set({ plugin: u.plugin, instance: u.instance }, u.rssBytes);
      },
    });
    new Gauge({
      name: 'hay_instance_cpu_seconds',
      help: 'CPU seconds used per instance (process tree)',
      labelNames: ['plugin', 'instance'] as const,
      registers: [this.registry],
      async collect() {
        const rows = await usage();
        this.reset();
        for (const u of rows) this.set({ plugin: u.plugin, instance: u.instance }, u.cpuSeconds);
      },
    });
  }

  /**
   * Feeds instance state changes: the time from `starting` to `running` is observed as the instance
   * startup duration (spawn or connect, MCP initialize). Entries live only while an instance starts.
   */
  observeInstanceState(e: { orgId: string; pluginKey: string; pluginId: string; to: string }): void {
    const key = `${e.orgId}\u0000${e.pluginKey}`;
    if (e.to === 'starting') {
      this.startingSince.set(key, performance.now());
      return;
    }
    const since = this.startingSince.get(key);
    this.startingSince.delete(key);
    if (e.to === 'running' && since !== undefined)
      this.instanceStartup.observe({ plugin: e.pluginId }, (performance.now() - since) / 1000);
  }

  /**
   * `plugin` (and `tool`) as label values: themselves while the pair is already tracked or the ceiling
   * leaves room, else `_overflow` (counted). One set lookup per call.
   */
  labels(plugin: string, tool = ''): { plugin: string; tool: string } {
    const key = `${plugin}\u0000${tool}`;
    if (this.series.has(key)) return { plugin, tool };
    if (this.series.size < this.maxSeries) {
      this.series.add(key);
      return { plugin, tool };
    }
    this.seriesOverflow.inc();
    return { plugin: OVERFLOW_LABEL, tool: tool === '' ? '' : OVERFLOW_LABEL };
  }

  /** Counts one call refused by a rate limit; `plugin` is `unknown` when refused before the lookup. */
  recordRateLimited(plugin: string, scope: 'plugin' | 'api_key'): void {
    this.rateLimited.inc({ plugin: this.labels(plugin).plugin, scope });
  }

  /** Counts one tool-result cache lookup (counter by result, and the per-plugin hit ratio). */
  recordCacheLookup(pluginId: string, hit: boolean): void {
    const { plugin } = this.labels(pluginId);
    this.cacheLookups.inc({ plugin, result: hit ? 'hit' : 'miss' });
    let t = this.cacheTallies.get(plugin);
    if (!t) {
      t = { hits: 0, lookups: 0 };
      this.cacheTallies.set(plugin, t);
    }
    t.lookups++;
    if (hit) t.hits++;
  }

  /**
   * One finished tool call. `pluginId` must be a registered plugin's id and `tool` a tool that plugin
   * listed, or `unknown`: never a caller-supplied string the host has not matched.
   */
  recordCall(pluginId: string, toolName: string, outcome: CallOutcome, seconds: number): void {
    const labels = this.labels(pluginId, toolName.length > 64 ? toolName.slice(0, 64) : toolName);
    this.toolCalls.inc({ ...labels, outcome });
    this.toolLatency.observe(labels, seconds);
  }
}
