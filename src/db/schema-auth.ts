import { index, jsonb, pgTable, primaryKey, text, uuid, varchar } from 'drizzle-orm/pg-core';
import { organizations } from './schema.js';
import { ts } from './columns.js';

/**
 * The host's JWT signing keys (ES256). `privateKey` is a SecretBox value (PKCS#8 PEM inside). A key signs
 * while `retiredAt` is null; a retired key stays in the JWKS until `retiredAt` + the longest token TTL.
 */
export const authSigningKeys = pgTable('auth_signing_keys', {
  kid: varchar('kid', { length: 64 }).primaryKey(),
  alg: varchar('alg', { length: 16 }).notNull(),
  publicJwk: jsonb('public_jwk').$type<Record<string, string>>().notNull(),
  privateKey: text('private_key').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  retiredAt: ts('retired_at'),
});

/**
 * OAuth state of one (organization, plugin): client registration, tokens and the pending authorization
 * (PKCE verifier, `state`). Every credential column holds a SecretBox value; `discovery` holds public
 * metadata only.
 */
export const pluginOauth = pgTable(
  'plugin_oauth',
  {
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    pluginKey: varchar('plugin_key', { length: 64 }).notNull(),
    status: varchar('status', { length: 16 }).notNull().$type<'pending' | 'connected' | 'failed'>(),
    clientInformation: text('client_information'),
    tokens: text('tokens'),
    tokensExpireAt: ts('tokens_expire_at'),
    codeVerifier: text('code_verifier'),
    /** SHA-256 hex of the `state` sent to the authorization server; the state itself is not stored. */
    stateHash: varchar('state_hash', { length: 64 }),
    stateExpiresAt: ts('state_expires_at'),
    discovery: jsonb('discovery').$type<Record<string, unknown>>(),
    /** Scope a server asked for when it refused a runtime request (step-up); used by the next connect. */
    requestedScope: text('requested_scope'),
    lastError: text('last_error'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.organizationId, t.pluginKey] }),
    index('plugin_oauth_state_idx').on(t.stateHash),
  ],
);
