import { index, pgTable, uuid, varchar } from 'drizzle-orm/pg-core';
import { ts } from './columns.js';

/**
 * Dashboard sign-in sessions (src/web-session/). Only the SHA-256 of the random session id is stored; the id
 * itself lives in the browser's HttpOnly cookie. `kind` 'org': the session acts as API key `keyId` (revoking
 * or deleting the key ends it); 'admin': as the admin token whose fingerprint was current at sign-in.
 */
export const webSessions = pgTable(
  'web_sessions',
  {
    idHash: varchar('id_hash', { length: 64 }).primaryKey(),
    kind: varchar('kind', { length: 8 }).$type<'admin' | 'org'>().notNull(),
    keyId: uuid('key_id'),
    /** 'admin' sessions: sha256 of sha256(admin token), so a changed token ends them. */
    adminFingerprint: varchar('admin_fingerprint', { length: 64 }),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [index('web_sessions_key_idx').on(t.keyId), index('web_sessions_expires_idx').on(t.expiresAt)],
);
