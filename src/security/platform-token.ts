import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { AuthError, PermissionDeniedError } from '../errors.js';

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
}

export interface PlatformTokensOptions {
  /** HMAC key, >= 32 bytes: e.g. keyRing.deriveKey('platform-token'), or omitted for a random per-process key. */
  secret?: Buffer;
  /** Default lifetime of issued tokens (config platformTokenTtlMs). */
  ttlMs: number;
  now?: () => number;
}

const PREFIX = 'hpt1';
const B64URL = /^[A-Za-z0-9_-]+$/;

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/**
 * Short-lived bearer tokens handed to plugin processes for calling platform APIs. Format
 * `hpt1.<base64url JSON claims>.<base64url HMAC-SHA256 of "hpt1.<claims>">`. Stateless: a token is valid
 * until `exp` for as long as this object's secret is; with a random secret, tokens die with the process.
 */
export class PlatformTokens {
  private readonly secret: Buffer;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: PlatformTokensOptions) {
    if (options.secret && options.secret.length < 32)
      throw new RangeError('PlatformTokens: secret must be at least 32 bytes');
    if (!(options.ttlMs > 0)) throw new RangeError('PlatformTokens: ttlMs must be > 0');
    this.secret = options.secret ? Buffer.from(options.secret) : randomBytes(32);
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
  }

  issue(
    subject: PlatformTokenSubject,
    ttlMs: number = this.ttlMs,
  ): { token: string; claims: PlatformTokenClaims } {
    const claims: PlatformTokenClaims = {
      orgId: subject.orgId,
      pluginId: subject.pluginId,
      pluginKey: subject.pluginKey,
      apis: [...subject.apis],
      exp: this.now() + ttlMs,
      jti: randomUUID(),
    };
    const body = `${PREFIX}.${Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url')}`;
    return { token: `${body}.${this.sign(body)}`, claims };
  }

  /**
   * Claims of a valid token. Throws AuthError('UNAUTHORIZED') saying why: malformed, bad signature,
   * or expired. The signature is checked (constant time) before the payload is parsed.
   */
  verify(token: unknown): PlatformTokenClaims {
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
    if (this.now() >= c.exp)
      throw new AuthError('UNAUTHORIZED', `platform token expired at ${new Date(c.exp).toISOString()}`);
    return {
      orgId: c.orgId,
      pluginId: c.pluginId,
      pluginKey: c.pluginKey,
      apis: c.apis,
      exp: c.exp,
      jti: c.jti,
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
