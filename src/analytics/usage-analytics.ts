import { and, eq, gte, lt, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { usageRollups } from '../db/schema-lifecycle.js';
import type { CallFinished } from '../invocation/call-events.js';
import type { Logger } from '../logger.js';
import { storableText } from '../db/storable.js';
import { BUCKETS, addBuckets, bucketOf, emptyBuckets, quantile } from './histogram.js';

const HOUR_MS = 3_600_000;
/** Tool name recorded for calls to a tool the plugin does not have (tenant-chosen names stay unbounded otherwise). */
export const UNKNOWN_TOOL = '(unknown tool)';

export interface UsageAnalyticsOptions {
  db: Db;
  logger: Logger;
  /** Buffered counts are written this often (and at close()). */
  flushIntervalMs: number;
  /** Rows older than this many days are deleted (checked at most hourly). */
  retentionDays: number;
  /** Distinct buffered rows before a flush is started early; twice this and new keys are dropped (counted). */
  maxBufferedRows: number;
  now?: () => number;
}

interface Counts {
  orgId: string;
  pluginId: string;
  version: string;
  tool: string;
  hour: number;
  calls: number;
  cacheHits: number;
  toolErrors: number;
  timeouts: number;
  rateLimited: number;
  capacity: number;
  invalid: number;
  otherErrors: number;
  latencyMsSum: number;
  buckets: number[];
}

export type AnalyticsGroupBy = 'hour' | 'day' | 'tool' | 'version';

export interface AnalyticsQuery {
  /** null = every organization (admin). */
  organizationId: string | null;
  pluginId?: string | undefined;
  version?: string | undefined;
  from: Date;
  to: Date;
  groupBy: AnalyticsGroupBy;
}

export interface AnalyticsRow {
  /** ISO hour/day start, tool name or version. */
  key: string;
  /** Set for groupBy tool/version (tools and versions are per plugin). */
  pluginId: string | null;
  calls: number;
  cacheHits: number;
  errors: {
    total: number;
    tool: number;
    timeout: number;
    rateLimited: number;
    capacity: number;
    invalid: number;
    other: number;
  };
  /** Failed calls (any error kind) / calls. */
  errorRate: number;
  latencyMs: {
    avg: number | null;
    p50: number | null;
    p90: number | null;
    p95: number | null;
    p99: number | null;
  };
}

/**
 * Usage rollups per (organization, plugin, version, tool, hour) in the database. `record` only adds to
 * an in-memory buffer (O(1), no I/O); a timer flushes the buffer in one upsert that adds counts, so
 * several host nodes share rows. A failed flush keeps its counts for the next one.
 */
export class UsageAnalytics {
  private readonly o: UsageAnalyticsOptions;
  private buffer = new Map<string, Counts>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private lastRetention = 0;
  private dropped = 0;
  private closed = false;

  constructor(options: UsageAnalyticsOptions) {
    this.o = options;
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.flush(), this.o.flushIntervalMs);
    this.timer.unref();
  }

  /** Flushes what is buffered and stops the timer. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Calls dropped because the buffer was full (the database was unreachable for long). */
  droppedCount(): number {
    return this.dropped;
  }

  readonly record = (e: CallFinished): void => {
    const tool =
      e.tool === undefined || e.errorCode === 'TOOL_NOT_FOUND'
        ? UNKNOWN_TOOL
        : storableText(e.tool.slice(0, 128));
    const hour = Math.floor(e.at / HOUR_MS) * HOUR_MS;
    const key = `${e.orgId}\u0000${e.pluginId}\u0000${e.version}\u0000${tool}\u0000${hour}`;
    let c = this.buffer.get(key);
    if (!c) {
      if (this.buffer.size >= this.o.maxBufferedRows * 2) {
        this.dropped++;
        return;
      }
      c = blank(e.orgId, e.pluginId, e.version.slice(0, 64), tool, hour);
      this.buffer.set(key, c);
      if (this.buffer.size >= this.o.maxBufferedRows) void this.flush();
    }
    c.calls++;
    c.latencyMsSum += e.durationMs;
    const b = bucketOf(e.durationMs);
    c.buckets[b] = (c.buckets[b] ?? 0) + 1;
    switch (e.outcome) {
      case 'ok':
        break;
      case 'cached':
        c.cacheHits++;
        break;
      case 'tool_error':
        c.toolErrors++;
        break;
      case 'timeout':
        c.timeouts++;
        break;
      case 'rate_limited':
        c.rateLimited++;
        break;
      case 'capacity':
        c.capacity++;
        break;
      case 'invalid':
        c.invalid++;
        break;
      case 'error':
        c.otherErrors++;
        break;
    }
  };

  /** Writes the buffer now. Concurrent calls share one write; a later call waits and writes again. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffer.size === 0) return this.retain();
    const batch = this.buffer;
    this.buffer = new Map();
    this.flushing = this.write([...batch.values()])
      .catch((err: unknown) => {
        this.o.logger.warn({ err, rows: batch.size }, 'usage analytics flush failed; kept for the next one');
        for (const [k, c] of batch) {
          const cur = this.buffer.get(k);
          if (cur) merge(cur, c);
          else if (this.buffer.size < this.o.maxBufferedRows * 2) this.buffer.set(k, c);
          else this.dropped += c.calls;
        }
      })
      .finally(() => {
        this.flushing = undefined;
      });
    await this.flushing;
    await this.retain();
  }

  private async write(rows: Counts[]): Promise<void> {
    const t = usageRollups;
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await this.o.db
        .insert(t)
        .values(
          chunk.map((c) => ({
            organizationId: c.orgId,
            pluginId: c.pluginId,
            version: c.version,
            tool: c.tool,
            hour: new Date(c.hour),
            calls: c.calls,
            cacheHits: c.cacheHits,
            toolErrors: c.toolErrors,
            timeouts: c.timeouts,
            rateLimited: c.rateLimited,
            capacity: c.capacity,
            invalid: c.invalid,
            otherErrors: c.otherErrors,
            latencyMsSum: c.latencyMsSum,
            latencyBuckets: c.buckets,
          })),
        )
        .onConflictDoUpdate({
          target: [t.organizationId, t.pluginId, t.version, t.tool, t.hour],
          set: {
            calls: sql`${t.calls} + excluded.calls`,
            cacheHits: sql`${t.cacheHits} + excluded.cache_hits`,
            toolErrors: sql`${t.toolErrors} + excluded.tool_errors`,
            timeouts: sql`${t.timeouts} + excluded.timeouts`,
            rateLimited: sql`${t.rateLimited} + excluded.rate_limited`,
            capacity: sql`${t.capacity} + excluded.capacity`,
            invalid: sql`${t.invalid} + excluded.invalid`,
            otherErrors: sql`${t.otherErrors} + excluded.other_errors`,
            latencyMsSum: sql`${t.latencyMsSum} + excluded.latency_ms_sum`,
            latencyBuckets: sql`(select array_agg(coalesce(u.a, 0) + coalesce(u.b, 0) order by u.i) from unnest(${t.latencyBuckets}, excluded.latency_buckets) with ordinality as u(a, b, i))`,
          },
        });
    }
  }

  private async retain(): Promise<void> {
    const now = (this.o.now ?? Date.now)();
    if (now - this.lastRetention < HOUR_MS) return;
    this.lastRetention = now;
    const cutoff = new Date(now - this.o.retentionDays * 24 * HOUR_MS);
    try {
      await this.o.db.delete(usageRollups).where(lt(usageRollups.hour, cutoff));
    } catch (err) {
      this.o.logger.warn({ err }, 'usage analytics retention failed');
      this.lastRetention = 0;
    }
  }

  /** Rollups in [from, to) grouped by `groupBy`; buffered counts are flushed first. */
  async query(q: AnalyticsQuery): Promise<AnalyticsRow[]> {
    await this.flush();
    const t = usageRollups;
    const where: SQL[] = [
      gte(t.hour, new Date(Math.floor(q.from.getTime() / HOUR_MS) * HOUR_MS)),
      lt(t.hour, q.to),
    ];
    if (q.organizationId !== null) where.push(eq(t.organizationId, q.organizationId));
    if (q.pluginId !== undefined) where.push(eq(t.pluginId, q.pluginId));
    if (q.version !== undefined) where.push(eq(t.version, q.version));
    const keyExpr =
      q.groupBy === 'hour'
        ? sql<string>`to_char(${t.hour} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:00:00"Z"')`
        : q.groupBy === 'day'
          ? sql<string>`to_char(${t.hour} at time zone 'UTC', 'YYYY-MM-DD')`
          : q.groupBy === 'tool'
            ? sql<string>`${t.tool}`
            : sql<string>`${t.version}`;
    const perPlugin = q.groupBy === 'tool' || q.groupBy === 'version';
    const pluginExpr = perPlugin ? sql<string>`${t.pluginId}` : sql<string>`min(${t.pluginId})`;
    const groups = perPlugin ? [keyExpr, pluginExpr] : [keyExpr];
    const bucketSums = Array.from(
      { length: BUCKETS },
      (_, i) => sql`coalesce(sum(${t.latencyBuckets}[${sql.raw(String(i + 1))}]), 0)`,
    );
    const rows = await this.o.db
      .select({
        key: keyExpr,
        pluginId: pluginExpr,
        calls: sql<string>`sum(${t.calls})`,
        cacheHits: sql<string>`sum(${t.cacheHits})`,
        toolErrors: sql<string>`sum(${t.toolErrors})`,
        timeouts: sql<string>`sum(${t.timeouts})`,
        rateLimited: sql<string>`sum(${t.rateLimited})`,
        capacity: sql<string>`sum(${t.capacity})`,
        invalid: sql<string>`sum(${t.invalid})`,
        otherErrors: sql<string>`sum(${t.otherErrors})`,
        latencyMsSum: sql<string>`sum(${t.latencyMsSum})`,
        buckets: sql<(string | number)[]>`array[${sql.join(bucketSums, sql`, `)}]`,
      })
      .from(t)
      .where(and(...where))
      .groupBy(...groups)
      .orderBy(...groups);
    return rows.map((r) => {
      const n = (v: string | number | null) => Number(v ?? 0);
      const calls = n(r.calls);
      const errors = {
        tool: n(r.toolErrors),
        timeout: n(r.timeouts),
        rateLimited: n(r.rateLimited),
        capacity: n(r.capacity),
        invalid: n(r.invalid),
        other: n(r.otherErrors),
      };
      const total = Object.values(errors).reduce((a, b) => a + b, 0);
      const buckets = r.buckets.map((x) => Number(x));
      return {
        key: r.key,
        pluginId: perPlugin ? r.pluginId : null,
        calls,
        cacheHits: n(r.cacheHits),
        errors: { total, ...errors },
        errorRate: calls ? total / calls : 0,
        latencyMs: {
          avg: calls ? Math.round((n(r.latencyMsSum) / calls) * 100) / 100 : null,
          p50: quantile(buckets, 0.5),
          p90: quantile(buckets, 0.9),
          p95: quantile(buckets, 0.95),
          p99: quantile(buckets, 0.99),
        },
      };
    });
  }
}

function blank(orgId: string, pluginId: string, version: string, tool: string, hour: number): Counts {
  return {
    orgId,
    pluginId,
    version,
    tool,
    hour,
    calls: 0,
    cacheHits: 0,
    toolErrors: 0,
    timeouts: 0,
    rateLimited: 0,
    capacity: 0,
    invalid: 0,
    otherErrors: 0,
    latencyMsSum: 0,
    buckets: emptyBuckets(),
  };
}

function merge(a: Counts, b: Counts): void {
  a.calls += b.calls;
  a.cacheHits += b.cacheHits;
  a.toolErrors += b.toolErrors;
  a.timeouts += b.timeouts;
  a.rateLimited += b.rateLimited;
  a.capacity += b.capacity;
  a.invalid += b.invalid;
  a.otherErrors += b.otherErrors;
  a.latencyMsSum += b.latencyMsSum;
  addBuckets(a.buckets, b.buckets);
}
