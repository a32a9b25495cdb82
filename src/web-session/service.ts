import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { Db } from '../db/database.js';
import { AuthError, isHayError } from '../errors.js';
import type { OrganizationService, Principal } from '../tenancy/organizations.js';
import { csrfMatches, csrfTokenFor, SessionStore } from './session-store.js';

/** What the page learns about its session (never the session id itself). */
export interface SessionInfo {
  kind: 'admin' | 'org';
  organizationId?: string;
  organizationName?: string;
  role?: 'admin' | 'member';
  keyPrefix?: string;
  /** Send as the X-Hay-CSRF header on every cookie-authenticated API request. */
  csrfToken: string;
  expiresAt: string;
}

export interface WebSessionsOptions {
  db: Db;
  organizations: OrganizationService;
  audit: AuditLog;
  adminToken: string;
  ttlMs: number;
  maxPerKey: number;
  now?: () => number;
}

/**
 * Dashboard sign-in: exchanges an organization API key or the admin token for a session (SessionStore),
 * and resolves a session cookie plus its CSRF token to the principal the key or token would be. A session of
 * a revoked key stops working at once; an admin session stops when the admin token changes.
 */
export class WebSessions {
  private readonly store: SessionStore;

  constructor(private readonly o: WebSessionsOptions) {
    const digest = createHash('sha256').update(o.adminToken).digest();
    this.store = new SessionStore(o.db, {
      ttlMs: o.ttlMs,
      maxPerKey: o.maxPerKey,
      adminFingerprint: createHash('sha256').update(digest).digest('hex'),
      ...(o.now ? { now: o.now } : {}),
    });
  }

  /** Signs in with `token`; a wrong token is audited as auth.failed and throws UNAUTHORIZED. */
  async signIn(token: string, ip: string): Promise<{ id: string; info: SessionInfo; maxAgeSeconds: number }> {
    let principal: Principal;
    try {
      principal = await this.o.organizations.authenticate(token);
    } catch (err) {
      this.o.audit.recordAuthFailure({
        ip,
        token,
        reason: isHayError(err) ? err.message : 'error',
        route: 'session',
      });
      throw err;
    }
    const { id, expiresAt } = await this.store.create(
      principal.kind === 'admin' ? { kind: 'admin' } : { kind: 'org', keyId: principal.keyId },
    );
    this.o.audit.record({
      organizationId: principal.kind === 'org' ? principal.organizationId : null,
      actor: actorOf(principal),
      action: 'session.create',
      outcome: 'ok',
      details: { ip, expiresAt: expiresAt.toISOString() },
    });
    const maxAgeSeconds = (expiresAt.getTime() - (this.o.now ?? Date.now)()) / 1000;
    return { id, info: await this.info(principal, id, expiresAt), maxAgeSeconds };
  }

  /**
   * The principal of session `id` when `csrf` is its token. Unknown or expired session: UNAUTHORIZED;
   * a missing or wrong CSRF token: FORBIDDEN (the session stays valid).
   */
  async authenticate(id: string, csrf: string | undefined): Promise<Principal> {
    const principal = await this.resolve(id);
    if (!csrfMatches(id, csrf))
      throw new AuthError(
        'FORBIDDEN',
        'a cookie-authenticated request needs the X-Hay-CSRF header of its session',
      );
    return principal;
  }

  /** The page's view of session `id` (used to restore the page after a reload). */
  async describe(id: string): Promise<SessionInfo> {
    const stored = await this.store.get(id);
    if (!stored) throw new AuthError('UNAUTHORIZED', 'not signed in (no or expired session)');
    const principal = await this.principalOf(stored.subject);
    return this.info(principal, id, stored.expiresAt);
  }

  /** Ends session `id` (needs its CSRF token); audited. Idempotent for an unknown session. */
  async signOut(id: string, csrf: string | undefined, ip: string): Promise<void> {
    const stored = await this.store.get(id);
    if (!stored) return;
    if (!csrfMatches(id, csrf))
      throw new AuthError('FORBIDDEN', 'signing out needs the X-Hay-CSRF header of the session');
    const principal = await this.principalOf(stored.subject).catch(() => undefined);
    await this.store.delete(id);
    this.o.audit.record({
      organizationId: principal?.kind === 'org' ? principal.organizationId : null,
      actor: principal ? actorOf(principal) : 'session',
      action: 'session.delete',
      outcome: 'ok',
      details: { ip },
    });
  }

  private async resolve(id: string): Promise<Principal> {
    const stored = await this.store.get(id);
    if (!stored) throw new AuthError('UNAUTHORIZED', 'not signed in (no or expired session)');
    return this.principalOf(stored.subject);
  }

  private async principalOf(subject: { kind: 'admin' } | { kind: 'org'; keyId: string }): Promise<Principal> {
    return subject.kind === 'admin' ? { kind: 'admin' } : this.o.organizations.principalForKey(subject.keyId);
  }

  private async info(principal: Principal, id: string, expiresAt: Date): Promise<SessionInfo> {
    const base = { csrfToken: csrfTokenFor(id), expiresAt: expiresAt.toISOString() };
    if (principal.kind === 'admin') return { kind: 'admin', ...base };
    const org = await this.o.organizations.get(principal.organizationId);
    return {
      kind: 'org',
      organizationId: principal.organizationId,
      ...(org ? { organizationName: org.name } : {}),
      role: principal.role,
      keyPrefix: principal.keyPrefix,
      ...base,
    };
  }
}

function actorOf(p: Principal): string {
  return p.kind === 'admin' ? 'admin' : `key:${p.keyPrefix}`;
}
