import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { platformTokenRevocations } from '../db/schema-isolation.js';

/**
 * Where platform-token revocation generations live. `generation` is the current one of (orgId, pluginKey)
 * (0 when never revoked); `revoke` raises it by one atomically and returns the new value.
 */
export interface TokenRevocations {
  generation(orgId: string, pluginKey: string): Promise<number>;
  revoke(orgId: string, pluginKey: string): Promise<number>;
}

/** In-process generations: for a single process whose tokens die with it (tests, tools). */
export class MemoryTokenRevocations implements TokenRevocations {
  readonly #generations = new Map<string, number>();

  generation(orgId: string, pluginKey: string): Promise<number> {
    return Promise.resolve(this.#generations.get(`${orgId}\u0000${pluginKey}`) ?? 0);
  }

  revoke(orgId: string, pluginKey: string): Promise<number> {
    const key = `${orgId}\u0000${pluginKey}`;
    const next = (this.#generations.get(key) ?? 0) + 1;
    this.#generations.set(key, next);
    return Promise.resolve(next);
  }
}

/**
 * Generations in `platform_token_revocations`, read on every check: a revocation made on any node (or before
 * a restart) holds everywhere at once. The upsert increments in one statement, so concurrent revokes on two
 * nodes both count.
 */
export class DbTokenRevocations implements TokenRevocations {
  constructor(private readonly db: Db) {}

  async generation(orgId: string, pluginKey: string): Promise<number> {
    const t = platformTokenRevocations;
    const rows = await this.db
      .select({ generation: t.generation })
      .from(t)
      .where(and(eq(t.organizationId, orgId), eq(t.pluginKey, pluginKey)))
      .limit(1);
    return rows[0]?.generation ?? 0;
  }

  async revoke(orgId: string, pluginKey: string): Promise<number> {
    const t = platformTokenRevocations;
    const rows = await this.db
      .insert(t)
      .values({ organizationId: orgId, pluginKey, generation: 1 })
      .onConflictDoUpdate({
        target: [t.organizationId, t.pluginKey],
        set: { generation: sql`${t.generation} + 1`, revokedAt: new Date() },
      })
      .returning({ generation: t.generation });
    return rows[0]?.generation ?? 1;
  }
}
