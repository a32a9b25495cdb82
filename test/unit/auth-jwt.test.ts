import { describe, expect, it } from 'vitest';
import { generateSigningKey, signJwt, verifyJwt, type JwtClaims } from '../../src/auth/jwt.js';

const claims = (over: Partial<JwtClaims> = {}): JwtClaims => ({
  iss: 'http://hay.test',
  sub: 'org:o1/plugin:p1',
  aud: 'urn:aud',
  iat: 1_000,
  exp: 1_300,
  jti: 'j1',
  org: 'o1',
  plugin: 'p1',
  ...over,
});

describe('ES256 JWTs', () => {
  const key = generateSigningKey();
  const jwks = { keys: [key.jwk] };
  const token = signJwt(claims(), { kid: key.jwk.kid, privateKey: key.privatePem });

  it('verifies signature, audience, issuer and lifetime', () => {
    expect(
      verifyJwt(token, jwks, { audience: 'urn:aud', issuer: 'http://hay.test', nowSeconds: 1_100 }),
    ).toMatchObject({
      ok: true,
      claims: { org: 'o1', plugin: 'p1' },
    });
    expect(verifyJwt(token, jwks, { nowSeconds: 1_331 })).toEqual({ ok: false, reason: 'expired' });
    expect(verifyJwt(token, jwks, { nowSeconds: 900 })).toEqual({
      ok: false,
      reason: 'issued in the future',
    });
    expect(verifyJwt(token, jwks, { audience: 'urn:x', nowSeconds: 1_100 })).toEqual({
      ok: false,
      reason: 'wrong audience',
    });
    expect(verifyJwt(token, jwks, { issuer: 'http://evil', nowSeconds: 1_100 })).toEqual({
      ok: false,
      reason: 'wrong issuer',
    });
  });

  it('refuses tampered payloads, other keys, and alg none', () => {
    const [h, , s] = token.split('.');
    const forged = Buffer.from(JSON.stringify(claims({ org: 'o2' }))).toString('base64url');
    expect(verifyJwt(`${h}.${forged}.${s}`, jwks, { nowSeconds: 1_100 })).toEqual({
      ok: false,
      reason: 'bad signature',
    });
    const other = generateSigningKey();
    expect(verifyJwt(token, { keys: [other.jwk] }, { nowSeconds: 1_100 }).ok).toBe(false);
    const wrongKey = signJwt(claims(), { kid: key.jwk.kid, privateKey: other.privatePem });
    expect(verifyJwt(wrongKey, jwks, { nowSeconds: 1_100 })).toEqual({ ok: false, reason: 'bad signature' });
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${forged}.`;
    expect(verifyJwt(none, jwks, { nowSeconds: 1_100 })).toEqual({
      ok: false,
      reason: 'unsupported alg "none"',
    });
    expect(verifyJwt('garbage', jwks)).toMatchObject({ ok: false });
  });

  it('gives each key an RFC 7638 thumbprint kid', () => {
    expect(key.jwk.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateSigningKey().jwk.kid).not.toBe(key.jwk.kid);
  });
});
