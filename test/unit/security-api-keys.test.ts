import { describe, expect, it } from 'vitest';
import {
  apiKeyPrefix,
  generateAdminToken,
  generateApiKey,
  hashApiKey,
  looksLikeApiKey,
  safeEqual,
  verifyApiKey,
} from '../../src/security/api-keys.js';

describe('api keys', () => {
  it('generates hay_ keys with a 12-char lookup prefix and a SHA-256 hash', () => {
    const k = generateApiKey();
    expect(k.plain).toMatch(/^hay_[A-Za-z0-9_-]{43}$/);
    expect(looksLikeApiKey(k.plain)).toBe(true);
    expect(k.prefix).toBe(k.plain.slice(0, 12));
    expect(apiKeyPrefix(k.plain)).toBe(k.prefix);
    expect(k.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(k.hash).toBe(hashApiKey(k.plain));
    expect(generateApiKey().plain).not.toBe(k.plain);
  });

  it('verifies a key against its hash only', () => {
    const k = generateApiKey();
    expect(verifyApiKey(k.plain, k.hash)).toBe(true);
    expect(verifyApiKey(k.plain, k.hash.toUpperCase())).toBe(true);
    expect(verifyApiKey(generateApiKey().plain, k.hash)).toBe(false);
    expect(verifyApiKey(k.plain, '')).toBe(false);
    expect(looksLikeApiKey('hay_short')).toBe(false);
  });

  it('compares strings of any length', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
  });

  it('generates admin tokens', () => {
    const t = generateAdminToken();
    expect(t).toMatch(/^hayadm_[A-Za-z0-9_-]{43}$/);
    expect(generateAdminToken()).not.toBe(t);
  });
});
