import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AuditLog } from '../../src/audit/audit-log.js';
import { auditLog } from '../../src/db/schema.js';
import type { Db } from '../../src/db/database.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.js';

const ORG = '00000000-0000-4000-8000-000000000001';

describe.each(DB_KINDS)('audit log batch writes (%s)', (kind) => {
  let t: TestDatabase;
  let audit: AuditLog;

  beforeEach(async () => {
    t = await createTestDatabase(kind);
    audit = new AuditLog(t.database.db, pino({ level: 'silent' }), {
      flushIntervalMs: 60_000,
      maxBuffered: 1_000,
    });
  });
  afterEach(async () => {
    await audit.close();
    await t.dispose();
  });

  it('writes a batch in record order with every column as given (nulls, nested JSON, unicode, long actor cut)', async () => {
    const before = Date.now();
    audit.record({
      organizationId: ORG,
      actor: 'key:hay_abcdefgh',
      action: 'tool.invoke',
      pluginId: 'hay-plugin-test',
      outcome: 'ok',
      details: {
        tool: 'echo',
        durationMs: 0.25,
        arguments: { message: 'grüße "quoted" \\ back\nslash ✓' },
        list: [1, null, true],
      },
    });
    audit.record({ organizationId: null, actor: 'system', action: 'secrets.rotate', outcome: 'error' });
    audit.record({
      organizationId: ORG,
      actor: `key:${'x'.repeat(300)}`,
      action: 'org.create',
      pluginId: null,
      outcome: 'denied',
      details: {},
    });
    for (let i = 0; i < 200; i++)
      audit.record({
        organizationId: ORG,
        actor: 'key:hay_abcdefgh',
        action: 'tool.invoke',
        pluginId: 'p',
        outcome: 'ok',
        details: { i },
      });
    await audit.flush();

    const rows = await t.database.db.select().from(auditLog).orderBy(auditLog.id);
    expect(rows).toHaveLength(203);
    const [first, second, third] = rows;
    expect(first).toMatchObject({
      organizationId: ORG,
      actor: 'key:hay_abcdefgh',
      action: 'tool.invoke',
      pluginId: 'hay-plugin-test',
      outcome: 'ok',
      details: {
        tool: 'echo',
        durationMs: 0.25,
        arguments: { message: 'grüße "quoted" \\ back\nslash ✓' },
        list: [1, null, true],
      },
    });
    expect(first?.at.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(second).toMatchObject({
      organizationId: null,
      actor: 'system',
      pluginId: null,
      outcome: 'error',
      details: {},
    });
    expect(third?.actor).toHaveLength(100);
    expect(rows.slice(3).map((r) => (r.details as { i: number }).i)).toEqual([...Array(200).keys()]);

    const page = await audit.query({ organizationId: ORG, action: 'tool.invoke', limit: 2 });
    expect(page.entries.map((e) => e.details)).toEqual([{ i: 199 }, { i: 198 }]);
    expect(page.nextCursor).not.toBeNull();
  });

  it('a full buffer while auth failures are open writes each aggregate once (it recursed until the stack overflowed)', async () => {
    // found 2026-12-02: one failed authentication on a host whose buffer fills (any load) threw RangeError
    // from record() on every later call and from the flush timer, and never wrote the rows
    const small = new AuditLog(t.database.db, pino({ level: 'silent' }), {
      flushIntervalMs: 60_000,
      maxBuffered: 3,
    });
    try {
      small.recordAuthFailure({ ip: '10.0.0.1', token: 'wrong', reason: 'invalid or revoked API key' });
      small.recordAuthFailure({ ip: '10.0.0.2', token: 'wrong', reason: 'invalid or revoked API key' });
      small.recordAuthFailure({ ip: '10.0.0.2', token: 'wrong', reason: 'invalid or revoked API key' });
      for (let i = 0; i < 7; i++)
        small.record({
          organizationId: ORG,
          actor: 'key:a',
          action: 'tool.invoke',
          outcome: 'ok',
          details: { i },
        });
      small.recordAuthFailure({ ip: '10.0.0.3', token: undefined, reason: 'missing bearer token' });
      await small.flush();
    } finally {
      await small.close();
    }
    const rows = await t.database.db.select().from(auditLog).orderBy(auditLog.id);
    expect(rows.filter((r) => r.action === 'tool.invoke').map((r) => (r.details as { i: number }).i)).toEqual(
      [0, 1, 2, 3, 4, 5, 6],
    );
    const failed = rows
      .filter((r) => r.action === 'auth.failed')
      .map((r) => `${r.actor}:${(r.details as { count: number }).count}`);
    expect(failed.sort()).toEqual(['ip:10.0.0.1:1', 'ip:10.0.0.2:2', 'ip:10.0.0.3:1']);
  });

  it('an entry with NUL or a lone surrogate in its details is stored, and does not take the batch with it', async () => {
    // found 2026-12-02: jsonb refuses \u0000 and unpaired surrogates (a tenant's tool arguments reach
    // details), so the whole batch failed on every retry: every org's audit entries were lost
    audit.record({
      organizationId: ORG,
      actor: 'key:a',
      action: 'org.create',
      outcome: 'ok',
      details: { i: 0 },
    });
    audit.record({
      organizationId: ORG,
      actor: 'key:a\u0000b',
      action: 'tool.invoke',
      outcome: 'ok',
      details: {
        tool: 'x\u0000y',
        arguments: { 'k\u0000': 'a\u0000b', cut: '\ud83d', low: 'z\udc00' },
        text: '\\u0000 \\\ud83d',
        i: 1,
      },
    });
    audit.record({
      organizationId: ORG,
      actor: 'key:a',
      action: 'org.create',
      outcome: 'ok',
      details: { i: 2 },
    });
    await audit.flush();
    const rows = await t.database.db.select().from(auditLog).orderBy(auditLog.id);
    expect(rows.map((r) => (r.details as { i: number }).i)).toEqual([0, 1, 2]);
    expect(rows[1]?.actor).toBe('key:a\ufffdb');
    expect(rows[1]?.details).toEqual({
      tool: 'x\ufffdy',
      arguments: { 'k\ufffd': 'a\ufffdb', cut: '\ufffd', low: 'z\ufffd' },
      text: '\\u0000 \\\ufffd',
      i: 1,
    });
  });

  it('one entry the write refuses is dropped and logged; the rest of its batch is written (it held back every later batch)', async () => {
    // a BigInt cannot be serialized: the whole batch failed on every retry, so no entry was written again
    for (let i = 0; i < 5; i++)
      audit.record({
        organizationId: ORG,
        actor: 'key:a',
        action: 'tool.invoke',
        outcome: 'ok',
        details: { i },
      });
    audit.record({
      organizationId: ORG,
      actor: 'key:a',
      action: 'tool.invoke',
      outcome: 'ok',
      details: { n: 10n },
    });
    for (let i = 5; i < 9; i++)
      audit.record({
        organizationId: ORG,
        actor: 'key:a',
        action: 'tool.invoke',
        outcome: 'ok',
        details: { i },
      });
    await audit.flush();
    const rows = await t.database.db.select().from(auditLog).orderBy(auditLog.id);
    expect(rows.map((r) => (r.details as { i?: number }).i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(audit.buffered()).toBe(0);
  });

  it('keeps the timestamp of each record to the millisecond', async () => {
    audit.record({ organizationId: ORG, actor: 'a', action: 'org.create', outcome: 'ok' });
    const buffered = (audit as unknown as { buffer: { at: Date }[] }).buffer.map((r) => r.at.getTime());
    await audit.flush();
    const rows = await t.database.db.select().from(auditLog);
    expect(rows.map((r) => r.at.getTime())).toEqual(buffered);
  });
});

describe('audit log when the database fails', () => {
  const entry = (i: number) => ({
    organizationId: ORG,
    actor: 'key:a',
    action: 'tool.invoke' as const,
    outcome: 'ok' as const,
    details: { i },
  });

  it('keeps every entry of a batch no part of which could be written, and writes them on the next flush', async () => {
    let down = true;
    let writes = 0;
    const db = {
      execute: () => {
        writes++;
        return down ? Promise.reject(new Error('connection refused')) : Promise.resolve();
      },
    } as unknown as Db;
    const audit = new AuditLog(db, pino({ level: 'silent' }), { flushIntervalMs: 60_000, maxBuffered: 100 });
    for (let i = 0; i < 10; i++) audit.record(entry(i));
    await audit.flush();
    // the write and the check that the database answers; no splitting while it does not
    expect(writes).toBe(2);
    expect(audit.buffered()).toBe(10);
    down = false;
    await audit.flush();
    expect(audit.buffered()).toBe(0);
    await audit.close();
  });

  it('holds at most ten batches while a write hangs, dropping the oldest', async () => {
    const db = { execute: () => new Promise(() => undefined) } as unknown as Db;
    const audit = new AuditLog(db, pino({ level: 'silent' }), { flushIntervalMs: 60_000, maxBuffered: 10 });
    // the first batch of ten goes to the hanging write; the rest wait in the buffer
    for (let i = 0; i < 10 + 150; i++) audit.record(entry(i));
    expect(audit.buffered()).toBe(100);
  });
});
