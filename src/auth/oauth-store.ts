import { createHash } from 'node:crypto';
import { and, eq, gt, isNotNull, sql } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { storableJson, storableText } from '../db/storable.js';
import { pluginOauth } from '../db/schema-auth.js';
import type { SecretBox } from '../security/secret-box.js';

export type OAuthStatus = 'pending' | 'connected' | 'failed';

/** Decrypted OAuth state of one (organization, plugin). JSON values are the SDK's shapes. */
export interface OAuthRecord {
  organizationId: string;
  pluginKey: string;
  status: OAuthStatus;
  clientInformation: Record<string, unknown> | undefined;
  tokens: Record<string, unknown> | undefined;
  tokensExpireAt: Date | undefined;
  codeVerifier: string | undefined;
  discovery: Record<string, unknown> | undefined;
  lastError: string | undefined;
  requestedScope: string | undefined;
  /** Until when a started authorization's `state` is accepted. */
  pendingUntil: Date | undefined;
  updatedAt: Date;
}

export type OAuthPatch = Partial<{
  status: OAuthStatus;
  clientInformation: Record<string, unknown> | null;
  tokens: Record<string, unknown> | null;
  tokensExpireAt: Date | null;
  codeVerifier: string | null;
  state: { value: string; expiresAt: Date } | null;
  discovery: Record<string, unknown> | null;
  lastError: string | null;
  requestedScope: string | null;
}>;

export const hashState = (state: string): string => createHash('sha256').update(state).digest('hex');

/**
 * Row access for plugin_oauth. Every credential (client information, tokens, PKCE verifier) is stored
 * SecretBox-encrypted; `state` only as a SHA-256 hash. Each write is one upsert of the columns it names,
 * so concurrent writers of different columns (a refresh and a callback) never revert each other.
 */
export class OAuthStore {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  async get(organizationId: string, pluginKey: string): Promise<OAuthRecord | undefined> {
    const [row] = await this.db
      .select()
      .from(pluginOauth)
      .where(and(eq(pluginOauth.organizationId, organizationId), eq(pluginOauth.pluginKey, pluginKey)));
    return row ? this.decode(row) : undefined;
  }

  /** The record whose pending authorization used `state`, if that state has not expired. */
  async byState(state: string, now: Date): Promise<OAuthRecord | undefined> {
    const [row] = await this.db
      .select()
      .from(pluginOauth)
      .where(
        and(
          eq(pluginOauth.stateHash, hashState(state)),
          isNotNull(pluginOauth.stateExpiresAt),
          gt(pluginOauth.stateExpiresAt, now),
        ),
      );
    return row ? this.decode(row) : undefined;
  }

  async patch(organizationId: string, pluginKey: string, patch: OAuthPatch): Promise<void> {
    const set: Partial<typeof pluginOauth.$inferInsert> = { updatedAt: new Date() };
    if (patch.status !== undefined) set.status = patch.status;
    if (patch.clientInformation !== undefined) set.clientInformation = this.enc(patch.clientInformation);
    if (patch.tokens !== undefined) set.tokens = this.enc(patch.tokens);
    if (patch.tokensExpireAt !== undefined) set.tokensExpireAt = patch.tokensExpireAt;
    if (patch.codeVerifier !== undefined)
      set.codeVerifier = patch.codeVerifier === null ? null : this.box.encrypt(patch.codeVerifier);
    if (patch.state !== undefined) {
      set.stateHash = patch.state === null ? null : hashState(patch.state.value);
      set.stateExpiresAt = patch.state === null ? null : patch.state.expiresAt;
    }
    // both come from the authorization server (its metadata, its error_description): stored NUL-free
    if (patch.discovery !== undefined)
      set.discovery = patch.discovery === null ? null : storableJson(patch.discovery);
    if (patch.lastError !== undefined)
      set.lastError = patch.lastError === null ? null : storableText(patch.lastError);
    if (patch.requestedScope !== undefined) set.requestedScope = patch.requestedScope;
    await this.db
      .insert(pluginOauth)
      .values({ organizationId, pluginKey, status: patch.status ?? 'pending', ...set })
      .onConflictDoUpdate({ target: [pluginOauth.organizationId, pluginOauth.pluginKey], set });
  }

  async delete(organizationId: string, pluginKey: string): Promise<void> {
    await this.db
      .delete(pluginOauth)
      .where(and(eq(pluginOauth.organizationId, organizationId), eq(pluginOauth.pluginKey, pluginKey)));
  }

  /**
   * Re-encrypts every credential column with the box's current key, row by row with compare-and-swap on
   * the old ciphertexts (a concurrent write wins and is not reverted). Returns how many values changed.
   */
  async reencrypt(): Promise<number> {
    const rows = await this.db.select().from(pluginOauth);
    let changed = 0;
    for (const row of rows) {
      const cols = ['clientInformation', 'tokens', 'codeVerifier'] as const;
      const set: Partial<Record<(typeof cols)[number], string>> = {};
      for (const c of cols) {
        const v = row[c];
        if (v !== null && this.box.needsReencrypt(v)) set[c] = this.box.encrypt(this.box.decrypt(v));
      }
      if (Object.keys(set).length === 0) continue;
      const done = await this.db
        .update(pluginOauth)
        .set(set)
        .where(
          and(
            eq(pluginOauth.organizationId, row.organizationId),
            eq(pluginOauth.pluginKey, row.pluginKey),
            sql`${pluginOauth.clientInformation} is not distinct from ${row.clientInformation}`,
            sql`${pluginOauth.tokens} is not distinct from ${row.tokens}`,
            sql`${pluginOauth.codeVerifier} is not distinct from ${row.codeVerifier}`,
          ),
        )
        .returning({ pluginKey: pluginOauth.pluginKey });
      if (done.length > 0) changed += Object.keys(set).length;
    }
    return changed;
  }

  /** Every SecretBox value stored here (for key retirement checks). */
  async storedSecrets(): Promise<string[]> {
    const rows = await this.db.select().from(pluginOauth);
    return rows.flatMap((r) =>
      [r.clientInformation, r.tokens, r.codeVerifier].filter((v): v is string => v !== null),
    );
  }

  private enc(value: Record<string, unknown> | null): string | null {
    return value === null ? null : this.box.encrypt(JSON.stringify(value));
  }

  private decode(row: typeof pluginOauth.$inferSelect): OAuthRecord {
    const dec = (v: string | null) =>
      v === null ? undefined : (JSON.parse(this.box.decrypt(v)) as Record<string, unknown>);
    return {
      organizationId: row.organizationId,
      pluginKey: row.pluginKey,
      status: row.status,
      clientInformation: dec(row.clientInformation),
      tokens: dec(row.tokens),
      tokensExpireAt: row.tokensExpireAt ?? undefined,
      codeVerifier: row.codeVerifier === null ? undefined : this.box.decrypt(row.codeVerifier),
      discovery: row.discovery ?? undefined,
      lastError: row.lastError ?? undefined,
      requestedScope: row.requestedScope ?? undefined,
      pendingUntil: row.stateHash !== null ? (row.stateExpiresAt ?? undefined) : undefined,
      updatedAt: row.updatedAt,
    };
  }
}
