import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { AuthError, PermissionDeniedError } from '../errors.js';
import { MemoryTokenRevocations, type TokenRevocations } from './token-revocations.js';

/** What a plugin instance may do with the platform API, signed into its token. */
export interface PlatformTokenSubject {
  orgId: string;
  pluginId: string;
  /** Identifies the running plugin (e.g. instance or registry key) for logs and revocation. */
  pluginKey: string;
  /** Platform APIs granted (manifest permissions.api). */
  apis: string[];
}

export interface PlatformTokenClaims extends PlatformTokenSubject {
  /** Expiry, ms since epoch. */
  exp: number;
  /** Unique token id. */
  jti: string;
  /** Revocation generation of (orgId, pluginKey) at issue; older than the current one = revoked. */
  gen: number;
}

export interface PlatformTokensOptions {
  /** HMAC key, >= 32 bytes: e.g. keyRing.deriveKey('platform-token'), or omitted for a random per-process key. */
  secret?: Buffer;
  /** Default lifetime of issued tokens (config platformTokenTtlMs). */
  ttlMs: number;
  now?: () => number;
  /** How long after `exp` a token may still be exchanged by refresh() (config platformTokenGraceMs). */
  graceMs?: number;
  /** Where revocations live: the database on a host (every node, every restart); default in memory. */
  revocations?: TokenRevocations;
}

const PREFIX = 'hpt1';
const B64URL = /^[A-Za-z0-9_-]+$/;

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/**
 * Short-lived bearer tokens handed to plugin processes for calling platform APIs. Format
 * `hpt1.<base64url JSON claims>.<base64url HMAC-SHA256 of "hpt1.<claims>">`. A token is valid until `exp`
 * unless revoked: revoke(orgId, pluginKey) (plugin disabled or uninstalled) bumps that pair's generation
 * and every token issued before is refused. A running plugin keeps access past its token's lifetime by
 * exchanging it at refresh() (POST /v1/platform/token/refresh) before, or up to `graceMs` after, `exp`:
 * its environment cannot change, so the fresh token comes back in the response. Revocation generations live
 * in `revocations` (the database on a host), read at every issue and check, so a token revoked on one node,
 * or before a restart, is refused everywhere.
 */
export class PlatformTokens {
  private readonly secret: Buffer;
  private readonly ttlMs: number;
  private readonly graceMs: number;
  private readonly now: () => number;
  private readonly revocations: TokenRevocations;

  constructor(options: PlatformTokensOptions) {
    if (options.secret && options.secret.length < 32)
      throw new RangeError('PlatformTokens: secret must be at least 32 bytes');
    if (!(options.ttlMs > 0)) throw new RangeError('PlatformTokens: ttlMs must be > 0');
    this.secret = options.secret ? Buffer.from(options.secret) : randomBytes(32);
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
    this.graceMs = options.graceMs ?? 0;
    this.revocations = options.revocations ?? new MemoryTokenRevocations();
  }

  /** Refuses every token issued so far for (orgId, pluginKey); later issues are valid again. */
  async revoke(orgId: string, pluginKey: string): Promise<void> {
    await this.revocations.revoke(orgId, pluginKey);
  }

  /**
   * A fresh token with the same subject for a valid token, or one expired less than `graceMs` ago.
   * Revoked, forged or too old tokens throw AuthError('UNAUTHORIZED').
   */
  async refresh(token: unknown): Promise<{ token: string; claims: PlatformTokenClaims }> {
    const claims = await this.check(token, this.graceMs);
    return this.issue(claims);
  }

  async issue(
    subject: PlatformTokenSubject,
    ttlMs: number = this.ttlMs,
  ): Promise<{ token: string; claims: PlatformTokenClaims }> {
    const gen = await this.revocations.generation(subject.orgId, subject.pluginKey);
    const claims: PlatformTokenClaims = {
      orgId: subject.orgId,
      pluginId: subject.pluginId,
      pluginKey: subject.pluginKey,
      apis: [...subject.apis],
      exp: this.now() + ttlMs,
      jti: randomUUID(),
      gen,
    };
    const body = `${PREFIX}.${Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url')}`;
    return { token: `${body}.${this.sign(body)}`, claims };
  }

  /**
   * Claims of a valid token. Throws AuthError('UNAUTHORIZED') saying why: malformed, bad signature,
   * or expired. The signature is checked (constant time) before the payload is parsed.
   */
  verify(token: unknown): Promise<PlatformTokenClaims> {
    return this.check(token, 0);
  }

  private async check(token: unknown, graceMs: number): Promise<PlatformTokenClaims> {
    const malformed = (): never => {
      throw new AuthError('UNAUTHORIZED', 'platform token is malformed (expected hpt1.<claims>.<signature>)');
    };
    if (typeof token !== 'string' || token.length > 8192) return malformed();
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) return malformed();
    const [, payload = '', sig = ''] = parts;
    if (!B64URL.test(payload) || !B64URL.test(sig)) return malformed();
    const expected = Buffer.from(this.sign(`${PREFIX}.${payload}`), 'base64url');
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new AuthError('UNAUTHORIZED', 'platform token signature is invalid');
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return malformed();
    }
    if (typeof parsed !== 'object' || parsed === null) return malformed();
    const c = parsed as Record<string, unknown>;
    if (
      typeof c.orgId !== 'string' ||
      typeof c.pluginId !== 'string' ||
      typeof c.pluginKey !== 'string' ||
      !isStringArray(c.apis) ||
      typeof c.exp !== 'number' ||
      typeof c.jti !== 'string'
    )
      return malformed();
    if (this.now() >= c.exp + graceMs)
      throw new AuthError(
        'UNAUTHORIZED',
        `platform token expired at ${new Date(c.exp).toISOString()}${graceMs > 0 ? ' and is past its refresh grace period' : ''}`,
      );
    const gen = typeof c.gen === 'number' ? c.gen : 0;
    if (gen < (await this.revocations.generation(c.orgId, c.pluginKey)))
      throw new AuthError(
        'UNAUTHORIZED',
        'platform token was revoked (the plugin was disabled or uninstalled for this organization)',
      );
    return {
      orgId: c.orgId,
      pluginId: c.pluginId,
      pluginKey: c.pluginKey,
      apis: c.apis,
      exp: c.exp,
      jti: c.jti,
      gen,
    };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }
}

/** Throws PermissionDeniedError unless the verified token grants `api`. */
export function assertTokenGrants(claims: PlatformTokenClaims, api: string): void {
  if (!claims.apis.includes(api)) throw new PermissionDeniedError(claims.pluginId, api);
}
