import { timingSafeEqual, createHash } from 'node:crypto';
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { apiKeys, organizations } from '../db/schema.js';
import { AuthError, NotFoundError } from '../errors.js';
import { apiKeyPrefix, generateApiKey, hashApiKey } from '../security/api-keys.js';
import { BulkRefreshCache } from './bulk-refresh-cache.js';

export type Role = 'admin' | 'member';

/** Least privilege for a key: only these plugin ids, and/or only these `<pluginId>/<tool>` tools. */
export interface KeyScopes {
  plugins?: string[];
  tools?: string[];
}

export type Principal =
  | { kind: 'admin' }
  | {
      kind: 'org';
      organizationId: string;
      role: Role;
      keyId: string;
      keyPrefix: string;
      /** Unset: the key reaches every plugin of its organization. */
      scopes?: KeyScopes;
    };

export interface Organization {
  id: string;
  name: string;
  createdAt: string;
}

export interface ApiKeyInfo {
  id: string;
  organizationId: string;
  prefix: string;
  role: Role;
  createdAt: string;
  revokedAt: string | null;
  scopes: KeyScopes | null;
}

/** Keys read per authentication query (a bulk refresh of many organizations' keys is several). */
const KEYS_PER_QUERY = 500;

/**
 * Organizations and their API keys. Keys are stored as SHA-256 hashes and shown once. Authentication
 * results are cached for `authCacheMs` (revocation on this node takes effect at once; other nodes
 * within that window), refreshed in bulk (BulkRefreshCache): many organizations' keys cost one query
 * per refresh, not one each.
 */
export class OrganizationService {
  private readonly adminDigest: Buffer;
  private readonly authCache: BulkRefreshCache<Principal>;

  constructor(
    private readonly db: Db,
    adminToken: string,
    options: { authCacheMs: number } = { authCacheMs: 5_000 },
  ) {
    this.adminDigest = createHash('sha256').update(adminToken).digest();
    this.authCache = new BulkRefreshCache((tokens) => this.principalsOf(tokens), {
      ttlMs: options.authCacheMs,
      maxEntries: 10_000,
    });
  }

  async create(name: string): Promise<{ organization: Organization; apiKey: string }> {
    const [org] = await this.db.insert(organizations).values({ name }).returning();
    if (!org) throw new Error('insert returned nothing');
    const { plain } = await this.createApiKey(org.id, 'admin');
    return { organization: toOrg(org), apiKey: plain };
  }

  async list(): Promise<Organization[]> {
    const rows = await this.db.select().from(organizations).orderBy(asc(organizations.createdAt));
    return rows.map(toOrg);
  }

  async get(id: string): Promise<Organization | undefined> {
    const [row] = await this.db.select().from(organizations).where(eq(organizations.id, id));
    return row ? toOrg(row) : undefined;
  }

  async createApiKey(
    organizationId: string,
    role: Role,
    scopes?: KeyScopes,
  ): Promise<{ plain: string; info: ApiKeyInfo }> {
    if (!(await this.get(organizationId)))
      throw new NotFoundError('ORG_NOT_FOUND', `organization ${organizationId} not found`);
    const key = generateApiKey();
    const [row] = await this.db
      .insert(apiKeys)
      .values({ organizationId, prefix: key.prefix, hash: key.hash, role, scopes: scopes ?? null })
      .returning();
    if (!row) throw new Error('insert returned nothing');
    return { plain: key.plain, info: toKey(row) };
  }

  async listApiKeys(organizationId: string): Promise<ApiKeyInfo[]> {
    const rows = await this.db.select().from(apiKeys).where(eq(apiKeys.organizationId, organizationId));
    return rows.map(toKey);
  }

  /** Revokes by key id or prefix; returns the revoked key. Idempotent for an already revoked key. */
  async revokeApiKey(idOrPrefix: string): Promise<ApiKeyInfo> {
    const isUuid = /^[0-9a-f-]{36}$/i.test(idOrPrefix);
    const [row] = await this.db
      .select()
      .from(apiKeys)
      .where(isUuid ? eq(apiKeys.id, idOrPrefix) : eq(apiKeys.prefix, idOrPrefix));
    if (!row) throw new NotFoundError('ORG_NOT_FOUND', `API key ${idOrPrefix} not found`);
    const [updated] = await this.db
      .update(apiKeys)
      .set({ revokedAt: row.revokedAt ?? new Date() })
      .where(eq(apiKeys.id, row.id))
      .returning();
    this.authCache.deleteWhere((principal) => principal.kind === 'org' && principal.keyId === row.id);
    return toKey(updated ?? row);
  }

  /** The principal of API key `keyId` while it is not revoked (a dashboard session acting as that key). */
  async principalForKey(keyId: string): Promise<Principal> {
    const [row] = await this.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)));
    if (!row) throw new AuthError('UNAUTHORIZED', 'the API key of this session was revoked; sign in again');
    return toPrincipal(row);
  }

  /** Resolves a bearer token to a principal; throws AuthError('UNAUTHORIZED') naming what was wrong. */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (token === undefined || token === '')
      throw new AuthError('UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <token>)');
    // a cached organization key first: the hot path pays no hash (the admin token is never cached)
    const cached = this.authCache.fresh(token);
    if (cached) return cached;
    const digest = createHash('sha256').update(token).digest();
    if (timingSafeEqual(digest, this.adminDigest)) return { kind: 'admin' };
    const principal = await this.authCache.get(token);
    if (!principal) throw new AuthError('UNAUTHORIZED', 'invalid or revoked API key');
    return principal;
  }

  /**
   * The principals of the unrevoked organization keys among `tokens`, by token: found through the unique
   * prefix index, decided by the hash (a lookup by hash alone scans every key).
   */
  private async principalsOf(tokens: readonly string[]): Promise<Map<string, Principal>> {
    const byPrefix = new Map<string, string[]>();
    for (const token of tokens) {
      const prefix = apiKeyPrefix(token);
      const same = byPrefix.get(prefix);
      if (same) same.push(token);
      else byPrefix.set(prefix, [token]);
    }
    const prefixes = [...byPrefix.keys()];
    const out = new Map<string, Principal>();
    for (let i = 0; i < prefixes.length; i += KEYS_PER_QUERY) {
      const rows = await this.db
        .select()
        .from(apiKeys)
        .where(
          and(inArray(apiKeys.prefix, prefixes.slice(i, i + KEYS_PER_QUERY)), isNull(apiKeys.revokedAt)),
        );
      for (const row of rows)
        for (const token of byPrefix.get(row.prefix) ?? [])
          if (hashApiKey(token) === row.hash) out.set(token, toPrincipal(row));
    }
    return out;
  }
}

function toPrincipal(row: typeof apiKeys.$inferSelect): Principal {
  return {
    kind: 'org',
    organizationId: row.organizationId,
    role: row.role,
    keyId: row.id,
    keyPrefix: row.prefix,
    ...(row.scopes ? { scopes: row.scopes } : {}),
  };
}

function toOrg(r: typeof organizations.$inferSelect): Organization {
  return { id: r.id, name: r.name, createdAt: r.createdAt.toISOString() };
}

function toKey(r: typeof apiKeys.$inferSelect): ApiKeyInfo {
  return {
    id: r.id,
    organizationId: r.organizationId,
    prefix: r.prefix,
    role: r.role,
    createdAt: r.createdAt.toISOString(),
    revokedAt: r.revokedAt ? r.revokedAt.toISOString() : null,
    scopes: r.scopes ?? null,
  };
}
