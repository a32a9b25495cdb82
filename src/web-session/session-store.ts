import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, desc, eq, lte, notInArray } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { webSessions } from '../db/schema.js';

/** Who a session acts as: an API key (by id) or the admin token. */
export type SessionSubject = { kind: 'admin' } | { kind: 'org'; keyId: string };

export interface StoredSession {
  subject: SessionSubject;
  expiresAt: Date;
}

export interface SessionStoreOptions {
  /** HostConfig.webSessionTtlMs: absolute lifetime from sign-in. */
  ttlMs: number;
  /** HostConfig.webSessionMaxPerKey: newest sessions kept per key (or for the admin token). */
  maxPerKey: number;
  /** sha256 hex of sha256(admin token); admin sessions stored under another fingerprint are refused. */
  adminFingerprint: string;
  now?: () => number;
}

/** sha256 hex; the stored form of a session id. */
export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** The CSRF token bound to session `id`: HMAC-SHA256(id, "csrf"), base64url. Not stored; recomputed. */
export function csrfTokenFor(id: string): string {
  return createHmac('sha256', id).update('hay-dashboard-csrf').digest('base64url');
}

/** Whether `presented` is the CSRF token of session `id`; constant time in the token's length. */
export function csrfMatches(id: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const expected = Buffer.from(csrfTokenFor(id));
  const got = Buffer.from(presented);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Session ids are 32 random bytes, base64url (43 characters). */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Dashboard sessions in the database (table web_sessions), so every host node accepts them. The plain id
 * is returned once by create() and never stored. Expired rows are refused and deleted when seen, and swept
 * on every create().
 */
export class SessionStore {
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly options: SessionStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async create(subject: SessionSubject): Promise<{ id: string; expiresAt: Date }> {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const expiresAt = new Date(now + this.options.ttlMs);
    await this.db.delete(webSessions).where(lte(webSessions.expiresAt, new Date(now)));
    await this.db.insert(webSessions).values({
      idHash: hashSessionId(id),
      kind: subject.kind,
      keyId: subject.kind === 'org' ? subject.keyId : null,
      adminFingerprint: subject.kind === 'admin' ? this.options.adminFingerprint : null,
      createdAt: new Date(now),
      expiresAt,
    });
    await this.trim(subject);
    return { id, expiresAt };
  }

  /** The live session with plain id `id`, or undefined (unknown, malformed, expired or stale admin). */
  async get(id: string): Promise<StoredSession | undefined> {
    if (!SESSION_ID.test(id)) return undefined;
    const idHash = hashSessionId(id);
    const [row] = await this.db.select().from(webSessions).where(eq(webSessions.idHash, idHash));
    if (!row) return undefined;
    if (row.expiresAt.getTime() <= this.now()) {
      await this.db.delete(webSessions).where(eq(webSessions.idHash, idHash));
      return undefined;
    }
    if (row.kind === 'admin')
      return row.adminFingerprint === this.options.adminFingerprint
        ? { subject: { kind: 'admin' }, expiresAt: row.expiresAt }
        : undefined;
    if (!row.keyId) return undefined;
    return { subject: { kind: 'org', keyId: row.keyId }, expiresAt: row.expiresAt };
  }

  /** Deletes the session; true when a row was deleted. Idempotent. */
  async delete(id: string): Promise<boolean> {
    if (!SESSION_ID.test(id)) return false;
    const rows = await this.db
      .delete(webSessions)
      .where(eq(webSessions.idHash, hashSessionId(id)))
      .returning({ idHash: webSessions.idHash });
    return rows.length > 0;
  }

  /** Keeps the newest maxPerKey sessions of the subject. */
  private async trim(subject: SessionSubject): Promise<void> {
    const same =
      subject.kind === 'org' ? eq(webSessions.keyId, subject.keyId) : eq(webSessions.kind, 'admin');
    const keep = await this.db
      .select({ idHash: webSessions.idHash })
      .from(webSessions)
      .where(same)
      .orderBy(desc(webSessions.createdAt))
      .limit(this.options.maxPerKey);
    if (keep.length < this.options.maxPerKey) return;
    await this.db.delete(webSessions).where(
      and(
        same,
        notInArray(
          webSessions.idHash,
          keep.map((k) => k.idHash),
        ),
      ),
    );
  }
}
