import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const API_KEY_PREFIX = 'hay_';
export const ADMIN_TOKEN_PREFIX = 'hayadm_';
/** Characters of the plain key stored and shown for lookup (`hay_` + 8 random chars). */
export const API_KEY_LOOKUP_LENGTH = 12;

export interface GeneratedApiKey {
  /** Shown once to the user; never stored. */
  plain: string;
  /** First 12 characters: stored in clear for lookup and display. */
  prefix: string;
  /** SHA-256 hex of `plain`: stored. */
  hash: string;
}

/** SHA-256 hex of a plain key (keys carry 256 random bits, so a fast hash is enough). */
export function hashApiKey(plain: string): string {
  return createHash('sha256').update(plain, 'utf8').digest('hex');
}

/** `hay_` + base64url of 32 random bytes, with its lookup prefix and hash. */
export function generateApiKey(): GeneratedApiKey {
  const plain = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { plain, prefix: apiKeyPrefix(plain), hash: hashApiKey(plain) };
}

/** Lookup prefix of a presented key. */
export function apiKeyPrefix(plain: string): string {
  return plain.slice(0, API_KEY_LOOKUP_LENGTH);
}

/** True when `value` has the shape of a key from generateApiKey (cheap pre-check before a DB lookup). */
export function looksLikeApiKey(value: string): boolean {
  return /^hay_[A-Za-z0-9_-]{43}$/.test(value);
}

/**
 * Constant-time string equality: both sides are hashed first, so neither content nor length leaks
 * through timing.
 */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** Constant-time check of a presented plain key against a stored SHA-256 hex hash. */
export function verifyApiKey(plain: string, storedHash: string): boolean {
  return safeEqual(hashApiKey(plain), storedHash.toLowerCase());
}

/** A random admin token (`hayadm_` + base64url of 32 bytes), e.g. printed at first start. */
export function generateAdminToken(): string {
  return `${ADMIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}
