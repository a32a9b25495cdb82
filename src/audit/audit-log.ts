import { and, desc, eq, gte, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { auditLog } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { storableJsonText } from '../db/storable.js';

export type AuditAction =
  | 'plugin.install'
  | 'plugin.build'
  | 'plugin.upload'
  | 'plugin.catalog-install'
  | 'plugin.uninstall'
  | 'plugin.rollback'
  | 'builder.save'
  | 'builder.test'
  | 'plugin.enable'
  | 'plugin.disable'
  | 'plugin.configure'
  | 'tool.invoke'
  | 'resource.read'
  | 'prompt.get'
  | 'permission.denied'
  | 'auth.failed'
  | 'rate.limited'
  | 'instance.killed'
  | 'org.create'
  | 'apikey.create'
  | 'apikey.revoke'
  | 'secrets.rotate'
  | 'gateway.configure'
  | 'plugin.pin'
  | 'plugin.unpin'
  | 'plugin.version'
  | 'rollout.set'
  | 'rollout.promote'
  | 'rollout.abort'
  | 'rollout.rollback'
  | 'event.publish'
  | 'event.deliver'
  | 'event.dead'
  | 'event.replay'
  | 'webhook.create'
  | 'webhook.delete'
  | 'webhook.rotate'
  | 'route.receive'
  | 'route.refused'
  | 'route.rotate'
  | 'oauth.connect'
  | 'oauth.callback'
  | 'oauth.refresh'
  | 'oauth.revoke'
  | 'oauth.failed'
  | 'jwt.rotate'
  | 'session.create'
  | 'session.delete'
  | 'instance.stop'
  | 'instance.restart';

export interface AuditEntry {
  organizationId: string | null;
  /** Who acted: `admin`, `key:<prefix>`, `plugin:<id>`, `system`. Never a secret. */
  actor: string;
  action: AuditAction;
  pluginId?: string | null;
  outcome: 'ok' | 'error' | 'denied';
  /** Must not contain secret values; callers pass field names and sanitized data only. */
  details?: Record<string, unknown>;
}

export interface AuditRow extends Required<Omit<AuditEntry, 'details'>> {
  id: number;
  at: string;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  organizationId?: string;
  pluginId?: string;
  action?: AuditAction;
  outcome?: AuditEntry['outcome'];
  since?: Date;
  until?: Date;
  /** Return entries with id < cursor (newest first paging). */
  cursor?: number;
  limit: number;
}

/** One failed authentication, as seen at the edge. `token` is never stored, only its key prefix. */
export interface AuthFailure {
  ip: string;
  token: string | undefined;
  reason: string;
  /** Route or procedure family, e.g. `plugins.upload`; omitted for tRPC. */
  route?: string;
}

interface AuthAggregate {
  ip: string;
  keyPrefix: string;
  reason: string;
  route: string | undefined;
  count: number;
  firstAt: Date;
  lastAt: Date;
}

/** Distinct sources aggregated per window; beyond it failures count under source `*`. */
const MAX_AUTH_SOURCES = 1_000;

/** What of a presented token may be stored: the public lookup prefix of an API-key-shaped token. */
function keyPrefixOf(token: string | undefined): string {
  if (token === undefined || token === '') return 'none';
  if (/^hay_[A-Za-z0-9_-]{8}/.test(token)) return token.slice(0, 12);
  return 'other';
}

type AuditInsert = typeof auditLog.$inferInsert;

/** The buffer holds at most this many batches (`maxBuffered` entries each) while writes fail or hang. */
const MAX_KEPT_BATCHES = 10;

/**
 * One `insert … select from json_to_recordset($1)` for a whole batch: ONE bound parameter (the rows as a
 * JSON array, in order, so ids follow the order of `record`) instead of drizzle's multi-row VALUES, whose
 * query building costs more CPU than the database's own insert (docs/benchmarks.md, issue 10 profile).
 * Same columns and types as the drizzle table; works on PGlite and PostgreSQL.
 */
function insertRows(batch: readonly AuditInsert[]): SQL {
  // one unstorable string (tenant-given tool arguments) would fail the batch on every retry
  const rows = storableJsonText(
    JSON.stringify(
      batch.map((r) => ({
        at: r.at,
        organization_id: r.organizationId,
        actor: r.actor,
        action: r.action,
        plugin_id: r.pluginId,
        outcome: r.outcome,
        details: r.details,
      })),
    ),
  );
  return sql`insert into audit_log (at, organization_id, actor, action, plugin_id, outcome, details)
    select at, organization_id, actor, action, plugin_id, outcome, coalesce(details, '{}'::jsonb)
    from json_to_recordset(${rows}::json) as r(at timestamptz, organization_id uuid, actor varchar(100),
      action varchar(64), plugin_id varchar(255), outcome varchar(32), details jsonb)`;
}

/**
 * Append-only audit log. `record` never blocks the caller on the database: entries are buffered and
 * written in batches every `flushIntervalMs` or when `maxBuffered` is reached; `query` and `close`
 * flush first. A failed write is logged and retried on the next flush (bounded buffer).
 */
export class AuditLog {
  private buffer: AuditInsert[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private readonly authFailures = new Map<string, AuthAggregate>();
  private authTimer: NodeJS.Timeout | undefined;
  /** Entries dropped from a full buffer since the last flush. */
  private dropped = 0;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly options: {
      flushIntervalMs: number;
      maxBuffered: number;
      /** Failed authentications of one source within this window become one row. */
      authFailureWindowMs?: number;
    } = {
      flushIntervalMs: 500,
      maxBuffered: 500,
    },
  ) {}

  /**
   * Counts a failed authentication. Failures of one source (IP, key prefix, reason, route) within the
   * window are written as ONE `auth.failed` row with `count`, `firstAt`, `lastAt`; the window closes
   * on its timer or on flush()/query()/close(). Memory is bounded: past MAX_AUTH_SOURCES sources,
   * failures are counted under ip `*`.
   */
  recordAuthFailure(f: AuthFailure): void {
    let ip = f.ip.slice(0, 64);
    let keyPrefix = keyPrefixOf(f.token);
    const reason = f.reason.slice(0, 200);
    let key = `${ip}\u0000${keyPrefix}\u0000${reason}\u0000${f.route ?? ''}`;
    if (!this.authFailures.has(key) && this.authFailures.size >= MAX_AUTH_SOURCES) {
      ip = '*';
      keyPrefix = '*';
      key = `*\u0000*\u0000${reason}\u0000${f.route ?? ''}`;
    }
    const now = new Date();
    const agg = this.authFailures.get(key);
    if (agg) {
      agg.count++;
      agg.lastAt = now;
    } else {
      this.authFailures.set(key, {
        ip,
        keyPrefix,
        reason,
        route: f.route,
        count: 1,
        firstAt: now,
        lastAt: now,
      });
    }
    if (!this.authTimer && !this.closed) {
      this.authTimer = setTimeout(() => {
        this.authTimer = undefined;
        this.closeAuthWindow();
      }, this.options.authFailureWindowMs ?? 60_000);
      this.authTimer.unref();
    }
  }

  /** Moves the open auth-failure aggregates into the write buffer. */
  private closeAuthWindow(): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    if (this.authFailures.size === 0) return;
    // emptied before recording: record() may flush, and flush() closes the window again
    const closing = [...this.authFailures.values()];
    this.authFailures.clear();
    for (const a of closing)
      this.record({
        organizationId: null,
        actor: `ip:${a.ip}`,
        action: 'auth.failed',
        outcome: 'denied',
        details: {
          reason: a.reason,
          keyPrefix: a.keyPrefix,
          count: a.count,
          firstAt: a.firstAt.toISOString(),
          lastAt: a.lastAt.toISOString(),
          ...(a.route !== undefined ? { route: a.route } : {}),
        },
      });
  }

  record(entry: AuditEntry): void {
    this.buffer.push({
      organizationId: entry.organizationId,
      actor: entry.actor.slice(0, 100),
      action: entry.action,
      pluginId: entry.pluginId ?? null,
      outcome: entry.outcome,
      details: entry.details ?? {},
      at: new Date(),
    });
    // writes failing or hanging: keep the newest, count the rest (reported by the next flush)
    const over = this.buffer.length - MAX_KEPT_BATCHES * this.options.maxBuffered;
    if (over > 0) {
      this.buffer.splice(0, over);
      this.dropped += over;
    }
    if (this.buffer.length >= this.options.maxBuffered) void this.flush();
    else if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.options.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** Writes everything buffered so far. Concurrent calls chain. */
  flush(): Promise<void> {
    this.closeAuthWindow();
    const run = (this.flushing ?? Promise.resolve()).then(async () => {
      if (this.dropped > 0) {
        this.logger.error(
          { dropped: this.dropped },
          'audit entries dropped: the buffer was full while writes failed or hung',
        );
        this.dropped = 0;
      }
      if (this.buffer.length === 0) return;
      const batch = this.buffer;
      this.buffer = [];
      const keep = await this.write(batch);
      if (keep.length > 0)
        this.buffer = [...keep, ...this.buffer].slice(-MAX_KEPT_BATCHES * this.options.maxBuffered);
    });
    this.flushing = run;
    return run;
  }

  /** Entries waiting for a write (bounded: MAX_KEPT_BATCHES × maxBuffered). */
  buffered(): number {
    return this.buffer.length;
  }

  /**
   * Writes `batch`. When that fails while the database answers (`select 1`), the batch is written again
   * in halves, in order, so one entry the database refuses cannot hold back the others: a lone refused
   * entry is logged and dropped. Returns what to keep for the next flush: the entries not written while
   * the database did not answer.
   */
  private async write(batch: AuditInsert[]): Promise<AuditInsert[]> {
    try {
      await this.db.execute(insertRows(batch));
      return [];
    } catch (err) {
      if (!(await this.answers())) {
        this.logger.error({ err, entries: batch.length }, 'audit write failed; will retry');
        return batch;
      }
    }
    const keep: AuditInsert[] = [];
    const split = async (rows: AuditInsert[]): Promise<void> => {
      try {
        await this.db.execute(insertRows(rows));
      } catch (err) {
        if (rows.length > 1) {
          await split(rows.slice(0, rows.length >> 1));
          await split(rows.slice(rows.length >> 1));
        } else if (await this.answers()) {
          const e = rows[0] as AuditInsert;
          this.logger.error(
            { err, orgId: e.organizationId, action: e.action },
            'audit entry refused by the database; dropped',
          );
        } else keep.push(...rows);
      }
    };
    await split(batch);
    return keep;
  }

  /** Whether the database answers a trivial query now. */
  private async answers(): Promise<boolean> {
    try {
      await this.db.execute(sql`select 1`);
      return true;
    } catch {
      return false;
    }
  }

  async query(q: AuditQuery): Promise<{ entries: AuditRow[]; nextCursor: number | null }> {
    await this.flush();
    const where: SQL[] = [];
    if (q.organizationId !== undefined) where.push(eq(auditLog.organizationId, q.organizationId));
    if (q.pluginId !== undefined) where.push(eq(auditLog.pluginId, q.pluginId));
    if (q.action !== undefined) where.push(eq(auditLog.action, q.action));
    if (q.outcome !== undefined) where.push(eq(auditLog.outcome, q.outcome));
    if (q.since !== undefined) where.push(gte(auditLog.at, q.since));
    if (q.until !== undefined) where.push(lte(auditLog.at, q.until));
    if (q.cursor !== undefined) where.push(lt(auditLog.id, q.cursor));
    const rows = await this.db
      .select()
      .from(auditLog)
      .where(and(...where))
      .orderBy(desc(auditLog.id))
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    return {
      entries: page.map((r) => ({
        id: r.id,
        at: r.at.toISOString(),
        organizationId: r.organizationId,
        actor: r.actor,
        action: r.action as AuditAction,
        pluginId: r.pluginId,
        outcome: r.outcome as AuditRow['outcome'],
        details: r.details,
      })),
      nextCursor: rows.length > q.limit ? (page[page.length - 1]?.id ?? null) : null,
    };
  }

  /** Flushes and stops the timer. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.closeAuthWindow();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
