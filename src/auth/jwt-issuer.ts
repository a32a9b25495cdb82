import { createPrivateKey, type KeyObject } from 'node:crypto';
import { and, isNull, eq, isNotNull, gt, or } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { authSigningKeys } from '../db/schema-auth.js';
import type { SecretBox } from '../security/secret-box.js';
import { generateSigningKey, newJti, signJwt, type Jwks, type PublicJwk } from './jwt.js';

/** Longest TTL a manifest may ask for (schema maximum); retired keys stay published this long. */
export const MAX_JWT_TTL_SECONDS = 86_400;

export interface JwtIssuerOptions {
  db: Db;
  box: SecretBox;
  /** `iss` of every token: the host's public base URL. */
  issuer: () => string;
  now?: () => number;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

/**
 * Signs short-lived ES256 tokens for (org, plugin) with the current key of a key ring kept in the
 * database (private keys SecretBox-encrypted), so every host node signs with and publishes the same keys.
 * `start()` loads the current key or creates the first one; `rotate()` adds a new current key and retires
 * the previous one, which stays in `jwks()` for MAX_JWT_TTL_SECONDS so tokens it signed still verify.
 */
export class JwtIssuer {
  private current: SigningKey | undefined;
  private jwksCache: { value: Jwks; until: number } | undefined;

  constructor(private readonly o: JwtIssuerOptions) {}

  async start(): Promise<void> {
    if (this.current) return;
    const [row] = await this.o.db
      .select()
      .from(authSigningKeys)
      .where(isNull(authSigningKeys.retiredAt))
      .orderBy(authSigningKeys.createdAt)
      .limit(1);
    if (row)
      this.current = { kid: row.kid, privateKey: createPrivateKey(this.o.box.decrypt(row.privateKey)) };
    else this.current = await this.insertKey();
  }

  /** A token for `orgId`'s instance of `pluginId`, valid `ttlSeconds` (30..86400). */
  sign(input: { orgId: string; pluginId: string; audience: string; ttlSeconds: number }): {
    token: string;
    expiresAt: number;
  } {
    if (!this.current) throw new Error('JwtIssuer.sign before start()');
    const ttl = Math.min(Math.max(Math.floor(input.ttlSeconds), 30), MAX_JWT_TTL_SECONDS);
    const iat = Math.floor(this.now() / 1000);
    const token = signJwt(
      {
        iss: this.o.issuer(),
        sub: `org:${input.orgId}/plugin:${input.pluginId}`,
        aud: input.audience,
        iat,
        exp: iat + ttl,
        jti: newJti(),
        org: input.orgId,
        plugin: input.pluginId,
      },
      this.current,
    );
    return { token, expiresAt: (iat + ttl) * 1000 };
  }

  /** Current and recently retired public keys (cached 30 s per node). */
  async jwks(): Promise<Jwks> {
    const now = this.now();
    if (this.jwksCache && this.jwksCache.until > now) return this.jwksCache.value;
    const horizon = new Date(now - MAX_JWT_TTL_SECONDS * 1000);
    const rows = await this.o.db
      .select({ jwk: authSigningKeys.publicJwk })
      .from(authSigningKeys)
      .where(
        or(
          isNull(authSigningKeys.retiredAt),
          and(isNotNull(authSigningKeys.retiredAt), gt(authSigningKeys.retiredAt, horizon)),
        ),
      )
      .orderBy(authSigningKeys.createdAt);
    const value: Jwks = { keys: rows.map((r) => r.jwk as unknown as PublicJwk) };
    this.jwksCache = { value, until: now + 30_000 };
    return value;
  }

  /** New current key; the previous current key is retired (still published for MAX_JWT_TTL_SECONDS). */
  async rotate(): Promise<{ kid: string; retired: string[] }> {
    const retired = await this.o.db
      .update(authSigningKeys)
      .set({ retiredAt: new Date(this.now()) })
      .where(isNull(authSigningKeys.retiredAt))
      .returning({ kid: authSigningKeys.kid });
    this.current = await this.insertKey();
    this.jwksCache = undefined;
    return { kid: this.current.kid, retired: retired.map((r) => r.kid) };
  }

  /** Re-encrypts every stored private key with the box's current key; returns how many changed. */
  async reencrypt(): Promise<number> {
    const rows = await this.o.db
      .select({ kid: authSigningKeys.kid, privateKey: authSigningKeys.privateKey })
      .from(authSigningKeys);
    let changed = 0;
    for (const row of rows) {
      if (!this.o.box.needsReencrypt(row.privateKey)) continue;
      const next = this.o.box.encrypt(this.o.box.decrypt(row.privateKey));
      const done = await this.o.db
        .update(authSigningKeys)
        .set({ privateKey: next })
        .where(and(eq(authSigningKeys.kid, row.kid), eq(authSigningKeys.privateKey, row.privateKey)))
        .returning({ kid: authSigningKeys.kid });
      changed += done.length;
    }
    return changed;
  }

  /** Every SecretBox value stored by the issuer (for key retirement checks). */
  async storedSecrets(): Promise<string[]> {
    const rows = await this.o.db.select({ privateKey: authSigningKeys.privateKey }).from(authSigningKeys);
    return rows.map((r) => r.privateKey);
  }

  private async insertKey(): Promise<SigningKey> {
    const { privatePem, jwk } = generateSigningKey();
    await this.o.db.insert(authSigningKeys).values({
      kid: jwk.kid,
      alg: 'ES256',
      publicJwk: { ...jwk },
      privateKey: this.o.box.encrypt(privatePem),
    });
    return { kid: jwk.kid, privateKey: createPrivateKey(privatePem) };
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}
