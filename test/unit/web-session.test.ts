import { afterEach, describe, expect, it } from 'vitest';
import { readCookie, sessionCookie } from '../../src/web-session/cookies.js';
import {
  csrfMatches,
  csrfTokenFor,
  hashSessionId,
  SessionStore,
} from '../../src/web-session/session-store.js';
import { webSessions } from '../../src/db/schema.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

const KEY_A = '00000000-0000-4000-8000-00000000000a';
const KEY_B = '00000000-0000-4000-8000-00000000000b';

describe('CSRF token', () => {
  it('is bound to its session and compared exactly', () => {
    const a = 'a'.repeat(43);
    const b = 'b'.repeat(43);
    expect(csrfMatches(a, csrfTokenFor(a))).toBe(true);
    expect(csrfMatches(a, csrfTokenFor(b))).toBe(false);
    expect(csrfMatches(a, undefined)).toBe(false);
    expect(csrfMatches(a, '')).toBe(false);
    expect(csrfMatches(a, csrfTokenFor(a).slice(1))).toBe(false);
    expect(csrfMatches(a, `${csrfTokenFor(a)}x`)).toBe(false);
    // the token does not reveal the session id or its stored hash
    expect(csrfTokenFor(a)).not.toContain(a);
    expect(csrfTokenFor(a)).not.toBe(hashSessionId(a));
  });
});

describe('session cookie', () => {
  it('is HttpOnly, SameSite=Strict, Path=/ and Secure only over https', () => {
    const plain = sessionCookie('v', 60, false);
    expect(plain).toBe('hay_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60');
    expect(sessionCookie('v', 60, true)).toMatch(/; Secure$/);
    expect(sessionCookie('', 0, false)).toContain('Max-Age=0');
  });

  it('is read from a Cookie header by exact name', () => {
    expect(readCookie('x=1; hay_session=abc; y=2', 'hay_session')).toBe('abc');
    expect(readCookie('not_hay_session=abc', 'hay_session')).toBeUndefined();
    expect(readCookie(undefined, 'hay_session')).toBeUndefined();
    expect(readCookie('hay_session=', 'hay_session')).toBeUndefined();
  });
});

describe('SessionStore', () => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.dispose();
    db = undefined;
  });

  async function store(now: { t: number }, fingerprint = 'f'.repeat(64), maxPerKey = 3) {
    db ??= await createTestDatabase('pglite');
    return new SessionStore(db.database.db, {
      ttlMs: 60_000,
      maxPerKey,
      adminFingerprint: fingerprint,
      now: () => now.t,
    });
  }

  it('stores only the hash, expires, deletes, and drops the oldest beyond maxPerKey', async () => {
    const now = { t: Date.now() };
    const s = await store(now);
    const a = await s.create({ kind: 'org', keyId: KEY_A });
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await db!.database.db.select().from(webSessions);
    expect(rows.map((r) => r.idHash)).toEqual([hashSessionId(a.id)]);
    expect(JSON.stringify(rows)).not.toContain(a.id);
    expect(await s.get(a.id)).toMatchObject({ subject: { kind: 'org', keyId: KEY_A } });
    expect(await s.get('x'.repeat(43))).toBeUndefined();
    expect(await s.get('not a session id')).toBeUndefined();

    // a second node (another store on the same database) accepts it
    const other = new SessionStore(db!.database.db, {
      ttlMs: 60_000,
      maxPerKey: 3,
      adminFingerprint: 'f'.repeat(64),
      now: () => now.t,
    });
    expect(await other.get(a.id)).toBeDefined();

    now.t += 60_001;
    expect(await s.get(a.id)).toBeUndefined();
    expect(await db!.database.db.select().from(webSessions)).toEqual([]);

    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      now.t += 10;
      ids.push((await s.create({ kind: 'org', keyId: KEY_A })).id);
    }
    const b = await s.create({ kind: 'org', keyId: KEY_B });
    const live = await Promise.all(ids.map(async (id) => (await s.get(id)) !== undefined));
    expect(live).toEqual([false, false, true, true, true]);
    expect(await s.get(b.id)).toBeDefined();

    expect(await s.delete(b.id)).toBe(true);
    expect(await s.delete(b.id)).toBe(false);
    expect(await s.get(b.id)).toBeUndefined();
  });

  it('refuses an admin session after the admin token changed', async () => {
    const now = { t: Date.now() };
    const s = await store(now, 'a'.repeat(64));
    const { id } = await s.create({ kind: 'admin' });
    expect(await s.get(id)).toMatchObject({ subject: { kind: 'admin' } });
    const rotated = new SessionStore(db!.database.db, {
      ttlMs: 60_000,
      maxPerKey: 3,
      adminFingerprint: 'b'.repeat(64),
    });
    expect(await rotated.get(id)).toBeUndefined();
  });
});
