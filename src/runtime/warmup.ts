import { and, desc, eq, isNotNull } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { pluginInstances } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { PluginSpec } from './ports.js';

/** What the warmup needs from the instance manager. */
export interface WarmableInstances {
  ensureInstanceRunning(orgId: string, spec: PluginSpec, options?: { signal?: AbortSignal }): Promise<void>;
  listTools(
    orgId: string,
    spec: PluginSpec,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<{ name: string }[]>;
  callTool(
    orgId: string,
    spec: PluginSpec,
    toolName: string,
    args: Record<string, unknown>,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<unknown>;
}

/** Tool name of the priming call; never a real tool (checked against tools/list before use). */
export const PRIME_TOOL = '__hay_warmup_prime__';

/** What the warmup needs from the registry: the runnable spec of a plugin key, if any. */
export interface WarmupRegistry {
  specByKey(pluginKey: string): PluginSpec | undefined;
}

export interface WarmupOptions {
  /** Pairs active within this window are restored (the host's idle timeout). */
  idleTimeoutMs: number;
  /** At most this many instances are started by one warmup; 0 disables it. */
  maxInstances: number;
  /** Instances started at the same time. */
  concurrency: number;
  /** Per-instance bound on start + tools/list. */
  timeoutMs: number;
}

export interface WarmupReport {
  candidates: number;
  warmed: number;
  failed: number;
  durationMs: number;
}

/**
 * Warm instances: which ones exist. An instance is bound to one (organization, plugin) pair (its
 * environment carries that org's configuration, secrets, API token and data folder), so "warm" means
 * a running, initialized instance for a pair that is likely to be called, with its tools/list already
 * loaded:
 *  - at boot, every enabled pair whose last activity is within the idle timeout (the instances the
 *    previous process would still have had running), most recent first;
 *  - plus, for a plugin whose manifest sets `runtime.warmInstances = N`, its N most recently active
 *    enabled pairs even if older than the idle window.
 * Both are bounded by `maxInstances` in total. A warmed instance is an ordinary instance: it idles out
 * like any other. No process is pre-spawned without an organization.
 */
export class InstanceWarmup {
  private readonly abort = new AbortController();
  private running: Promise<WarmupReport> | undefined;

  constructor(
    private readonly deps: {
      db: Db;
      logger: Logger;
      instances: WarmableInstances;
      registry: WarmupRegistry;
      options: WarmupOptions;
      now?: () => number;
    },
  ) {}

  /** Starts the boot warmup in the background (idempotent); failures are logged, never thrown. */
  start(): void {
    this.running ??= this.restore().catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.deps.logger.warn({ err }, 'instance warmup failed');
      return { candidates: 0, warmed: 0, failed: 0, durationMs: 0 };
    });
  }

  /** Resolves with the boot warmup's report once it finished (undefined if never started). */
  finished(): Promise<WarmupReport | undefined> {
    return this.running ?? Promise.resolve(undefined);
  }

  /** Aborts a warmup in progress and waits for it to settle. Idempotent. */
  async close(): Promise<void> {
    this.abort.abort(new Error('host closing'));
    await this.running;
  }

  /**
   * Starts (orgId, spec), loads its tools, then primes the server's tools/call path with a call to a tool
   * that does not exist (PRIME_TOOL; skipped if the server lists that name). No tool runs, so nothing
   * happens on the plugin's side; the server answers "unknown tool", and its first real call no longer
   * pays the server's own first-request cost (measured on the test plugin: ~4 ms -> ~1.5 ms).
   */
  async warm(orgId: string, spec: PluginSpec, signal?: AbortSignal): Promise<void> {
    const signals = [
      AbortSignal.timeout(this.deps.options.timeoutMs),
      this.abort.signal,
      ...(signal ? [signal] : []),
    ];
    const s = AbortSignal.any(signals);
    const options = { signal: s, timeoutMs: this.deps.options.timeoutMs };
    await this.deps.instances.ensureInstanceRunning(orgId, spec, { signal: s });
    const tools = await this.deps.instances.listTools(orgId, spec, options);
    if (tools.some((t) => t.name === PRIME_TOOL)) return;
    await this.deps.instances.callTool(orgId, spec, PRIME_TOOL, {}, options).catch(() => undefined);
  }

  /** The (org, plugin) pairs the boot warmup starts, in order. */
  async candidates(): Promise<{ orgId: string; spec: PluginSpec }[]> {
    const { options } = this.deps;
    if (options.maxInstances <= 0) return [];
    const since = new Date((this.deps.now ?? Date.now)() - options.idleTimeoutMs);
    const rows = await this.deps.db
      .select({
        orgId: pluginInstances.organizationId,
        pluginKey: pluginInstances.pluginRegistryId,
        at: pluginInstances.lastActivityAt,
      })
      .from(pluginInstances)
      .where(and(eq(pluginInstances.enabled, true), isNotNull(pluginInstances.lastActivityAt)))
      .orderBy(desc(pluginInstances.lastActivityAt))
      .limit(options.maxInstances * 20);
    const out: { orgId: string; spec: PluginSpec }[] = [];
    const perPlugin = new Map<string, number>();
    for (const row of rows) {
      if (out.length >= options.maxInstances) break;
      const spec = this.deps.registry.specByKey(row.pluginKey);
      if (!spec) continue;
      const recent = row.at !== null && row.at > since;
      const quota = spec.manifest.runtime?.warmInstances ?? 0;
      const taken = perPlugin.get(row.pluginKey) ?? 0;
      if (!recent && taken >= quota) continue;
      perPlugin.set(row.pluginKey, taken + 1);
      out.push({ orgId: row.orgId, spec });
    }
    return out;
  }

  private async restore(): Promise<WarmupReport> {
    const started = performance.now();
    const pairs = await this.candidates();
    let next = 0;
    let warmed = 0;
    let failed = 0;
    const worker = async () => {
      for (;;) {
        if (this.abort.signal.aborted) return;
        const pair = pairs[next++];
        if (!pair) return;
        try {
          await this.warm(pair.orgId, pair.spec);
          warmed++;
        } catch (err) {
          failed++;
          if (!this.abort.signal.aborted)
            this.deps.logger.info(
              { orgId: pair.orgId, pluginId: pair.spec.pluginId, err },
              'warmup could not start instance',
            );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.deps.options.concurrency) }, worker));
    const report = {
      candidates: pairs.length,
      warmed,
      failed,
      durationMs: Math.round(performance.now() - started),
    };
    if (pairs.length > 0) this.deps.logger.info(report, 'instance warmup finished');
    return report;
  }
}
