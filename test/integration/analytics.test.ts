import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageAnalytics, UNKNOWN_TOOL } from '../../src/analytics/usage-analytics.js';
import { usageRollups } from '../../src/db/schema-lifecycle.js';
import type { CallFinished } from '../../src/invocation/call-events.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.js';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

const logger = createLogger({ level: 'silent' });
const HOUR = 3_600_000;

function call(over: Partial<CallFinished>): CallFinished {
  return {
    orgId: over.orgId ?? randomUUID(),
    pluginId: 'p',
    version: '1.0.0',
    tool: 'echo',
    outcome: 'ok',
    errorCode: undefined,
    durationMs: 3,
    at: Date.UTC(2026, 0, 1, 10, 30),
    ...over,
  };
}

describe.each(DB_KINDS)('usage analytics store (%s)', (kind) => {
  const dbs: TestDatabase[] = [];
  afterAll(async () => {
    for (const d of dbs) await d.dispose();
  });

  it('two writers (nodes) flushing into the same rows add up; percentiles merge', async () => {
    const t = await createTestDatabase(kind);
    dbs.push(t);
    const opts = {
      db: t.database.db,
      logger,
      flushIntervalMs: 60_000,
      retentionDays: 36500,
      maxBufferedRows: 100,
    };
    const a = new UsageAnalytics(opts);
    const b = new UsageAnalytics(opts);
    const org = randomUUID();
    for (let i = 0; i < 30; i++) a.record(call({ orgId: org, durationMs: 3 }));
    for (let i = 0; i < 10; i++) b.record(call({ orgId: org, durationMs: 400, outcome: 'tool_error' }));
    b.record(call({ orgId: org, outcome: 'cached' }));
    b.record(call({ orgId: org, outcome: 'invalid', tool: 'nope-x', errorCode: 'TOOL_NOT_FOUND' }));
    a.record(call({ orgId: org, at: Date.UTC(2026, 0, 1, 11, 5), outcome: 'timeout', version: '2.0.0' }));
    await a.flush();
    await b.flush();
    // a second flush of the same key adds to the stored row
    a.record(call({ orgId: org }));
    await a.close();
    await b.close();
    await a.close();

    const rows = await t.database.db.select().from(usageRollups);
    expect(rows).toHaveLength(3);
    const echo10 = rows.find((r) => r.tool === 'echo' && r.version === '1.0.0');
    expect(echo10).toMatchObject({ calls: 42, toolErrors: 10, cacheHits: 1 });
    expect(echo10?.latencyBuckets.reduce((x, y) => x + y, 0)).toBe(42);
    expect(rows.find((r) => r.tool === UNKNOWN_TOOL)).toMatchObject({ calls: 1, invalid: 1 });

    const q = new UsageAnalytics(opts);
    const range = { from: new Date(Date.UTC(2026, 0, 1)), to: new Date(Date.UTC(2026, 0, 2)) };
    const byHour = await q.query({ organizationId: org, ...range, groupBy: 'hour' });
    expect(byHour.map((r) => [r.key, r.calls])).toEqual([
      ['2026-01-01T10:00:00Z', 43],
      ['2026-01-01T11:00:00Z', 1],
    ]);
    const h10 = byHour[0]!;
    expect(h10.errors).toMatchObject({ total: 11, tool: 10, invalid: 1 });
    expect(h10.latencyMs.p50).toBeLessThanOrEqual(5);
    expect(h10.latencyMs.p99).toBeGreaterThan(250);
    expect(h10.latencyMs.p95).toBeGreaterThanOrEqual(h10.latencyMs.p90!);
    expect(h10.latencyMs.p95).toBeLessThanOrEqual(h10.latencyMs.p99!);
    const byVersion = await q.query({ organizationId: org, ...range, groupBy: 'version' });
    expect(byVersion.map((r) => [r.pluginId, r.key, r.calls, r.errors.timeout])).toEqual([
      ['p', '1.0.0', 43, 0],
      ['p', '2.0.0', 1, 1],
    ]);
    const byDay = await q.query({ organizationId: null, ...range, groupBy: 'day' });
    expect(byDay).toMatchObject([{ key: '2026-01-01', calls: 44 }]);
    const other = await q.query({ organizationId: randomUUID(), ...range, groupBy: 'tool' });
    expect(other).toEqual([]);
    await q.close();
  });

  it('deletes rows older than the retention', async () => {
    const t = await createTestDatabase(kind);
    dbs.push(t);
    const now = Date.UTC(2026, 5, 1);
    const a = new UsageAnalytics({
      db: t.database.db,
      logger,
      flushIntervalMs: 60_000,
      retentionDays: 7,
      maxBufferedRows: 100,
      now: () => now,
    });
    a.record(call({ at: now - 8 * 24 * HOUR }));
    a.record(call({ at: now - 6 * 24 * HOUR }));
    await a.flush();
    // retention ran before the write on the first flush; the next run (an hour later) removes the old row
    const b = new UsageAnalytics({
      db: t.database.db,
      logger,
      flushIntervalMs: 60_000,
      retentionDays: 7,
      maxBufferedRows: 100,
      now: () => now + HOUR,
    });
    await b.close();
    const rows = await t.database.db.select().from(usageRollups);
    expect(rows.map((r) => r.hour.getTime())).toEqual([Math.floor((now - 6 * 24 * HOUR) / HOUR) * HOUR]);
    await a.close();
  });
});

describe('usage analytics through the host', () => {
  const hosts: TestHost[] = [];
  afterAll(async () => {
    for (const h of hosts) await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('survive a restart and agree with the calls made', async () => {
    const first = await startTestHost({
      plugins: { 'core/kit': toolkitPlugin('kit') },
      config: { analyticsFlushIntervalMs: 60_000 },
    });
    const org = await first.createOrganization('acme');
    const other = await first.createOrganization('other');
    await org.hay.plugins.enable.mutate({ pluginId: 'kit', configuration: {} });
    await other.hay.plugins.enable.mutate({ pluginId: 'kit', configuration: {} });
    for (let i = 0; i < 7; i++)
      await org.hay.plugins.invokeTool.mutate({
        pluginId: 'kit',
        toolName: 'echo',
        arguments: { message: 'x' },
      });
    for (let i = 0; i < 2; i++)
      await org.hay.plugins.invokeTool.mutate({ pluginId: 'kit', toolName: 'fail', arguments: {} });
    await expect(
      org.hay.plugins.invokeTool.mutate({ pluginId: 'kit', toolName: 'count', arguments: { n: 0 } }),
    ).rejects.toThrow();
    await other.hay.plugins.invokeTool.mutate({
      pluginId: 'kit',
      toolName: 'echo',
      arguments: { message: 'y' },
    });
    const folders = await first.stop();

    const second = await startTestHost({ reuse: folders });
    hosts.push(second);
    const hay = second.client(org.apiKey);
    const from = new Date(Date.now() - 2 * HOUR).toISOString();
    const to = new Date(Date.now() + HOUR).toISOString();
    const byTool = await hay.plugins.analytics.query({ pluginId: 'kit', from, to, groupBy: 'tool' });
    expect(byTool.map((r) => [r.key, r.calls, r.errors.total])).toEqual([
      ['count', 1, 1],
      ['echo', 7, 0],
      ['fail', 2, 2],
    ]);
    expect(byTool.find((r) => r.key === 'fail')?.errors.tool).toBe(2);
    expect(byTool.find((r) => r.key === 'count')?.errors.invalid).toBe(1);
    const byVersion = await hay.plugins.analytics.query({ from, to, groupBy: 'version' });
    expect(byVersion).toMatchObject([{ key: '1.0.0', pluginId: 'kit', calls: 10 }]);
    // the operator sees every organization
    const all = await second.admin.admin.analytics.query({ from, to, groupBy: 'day' });
    expect(all.reduce((n, r) => n + r.calls, 0)).toBe(11);
    const one = await second.admin.admin.analytics.query({
      from,
      to,
      groupBy: 'day',
      organizationId: other.organizationId,
    });
    expect(one.reduce((n, r) => n + r.calls, 0)).toBe(1);
    await expect(
      hay.plugins.analytics.query({ pluginId: 'nope', from, to, groupBy: 'tool' }),
    ).rejects.toMatchObject({ data: { code: 'NOT_FOUND' } });
    await expect(hay.plugins.analytics.query({ from: to, to: from, groupBy: 'tool' })).rejects.toThrow(
      /"to" must be after "from"/,
    );
  }, 120_000);

  it('a rate-limited call counts under the unknown tool, whatever name the tenant sent (NUL included)', async () => {
    // found 2026-12-02: a call refused before the tool was matched kept the tenant's tool name; a name with
    // NUL failed every later flush (no org's counts written again) and fresh names each added a stored row
    const rateLimitPerMinute = 1;
    const h = await startTestHost({
      plugins: { 'core/kit': toolkitPlugin('kit', { runtime: { rateLimitPerMinute } }) },
      config: { analyticsFlushIntervalMs: 60_000, rateLimitBurst: 3 },
    });
    hosts.push(h);
    const org = await h.createOrganization('acme');
    await org.hay.plugins.enable.mutate({ pluginId: 'kit', configuration: {} });
    await org.hay.plugins.invokeTool.mutate({
      pluginId: 'kit',
      toolName: 'echo',
      arguments: { message: 'x' },
    });
    for (const toolName of ['a\u0000b', 'tenant-chosen-1'])
      await expect(
        org.hay.plugins.invokeTool.mutate({ pluginId: 'kit', toolName, arguments: {} }),
      ).rejects.toMatchObject({ data: { code: 'TOO_MANY_REQUESTS' } });
    const from = new Date(Date.now() - 2 * HOUR).toISOString();
    const to = new Date(Date.now() + HOUR).toISOString();
    const byTool = await org.hay.plugins.analytics.query({ pluginId: 'kit', from, to, groupBy: 'tool' });
    expect(byTool.map((r) => [r.key, r.calls, r.errors.rateLimited])).toEqual([
      [UNKNOWN_TOOL, 2, 2],
      ['echo', 1, 0],
    ]);
  }, 120_000);
});
