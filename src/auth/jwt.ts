import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
  verify,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** A public key as published in the JWKS (RFC 7517), P-256 for ES256. */
export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y: string;
  kid: string;
  alg: string;
  use: string;
}

export interface Jwks {
  keys: PublicJwk[];
}

export interface JwtClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
  /** The organization the token speaks for. */
  org: string;
  /** The plugin id the token was issued to. */
  plugin: string;
}

const b64url = (buf: Buffer | string): string => Buffer.from(buf).toString('base64url');

/** A fresh ES256 key pair: PKCS#8 PEM of the private key and its public JWK with an RFC 7638 thumbprint kid. */
export function generateSigningKey(): { privatePem: string; jwk: PublicJwk } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const raw = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string; y: string };
  const thumbprint = createHash('sha256')
    .update(JSON.stringify({ crv: raw.crv, kty: raw.kty, x: raw.x, y: raw.y }))
    .digest('base64url');
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    jwk: { kty: raw.kty, crv: raw.crv, x: raw.x, y: raw.y, kid: thumbprint, alg: 'ES256', use: 'sig' },
  };
}

/** Compact JWS (ES256) of `claims` signed with `privateKey`, header naming `kid`. */
export function signJwt(claims: JwtClaims, key: { kid: string; privateKey: KeyObject | string }): string {
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: key.kid }));
  const payload = b64url(JSON.stringify(claims));
  const input = `${header}.${payload}`;
  const privateKey = typeof key.privateKey === 'string' ? createPrivateKey(key.privateKey) : key.privateKey;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

export type JwtVerifyResult = { ok: true; claims: JwtClaims } | { ok: false; reason: string };

/**
 * Verifies an ES256 token against `jwks`: signature by the key its header names, `aud` and `iss` when
 * given, `exp`/`iat` against `nowSeconds` with `leewaySeconds` (default 30). Never throws.
 */
export function verifyJwt(
  token: string,
  jwks: Jwks,
  expect: { audience?: string; issuer?: string; nowSeconds?: number; leewaySeconds?: number } = {},
): JwtVerifyResult {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'not a compact JWS (three dot-separated parts)' };
  const [h = '', p = '', s = ''] = parts;
  let header: { alg?: unknown; kid?: unknown };
  let claims: JwtClaims;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as JwtClaims;
  } catch {
    return { ok: false, reason: 'header or payload is not base64url JSON' };
  }
  if (header.alg !== 'ES256') return { ok: false, reason: `unsupported alg ${JSON.stringify(header.alg)}` };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, reason: `unknown kid ${JSON.stringify(header.kid)}` };
  const publicKey = createPublicKey({
    key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    format: 'jwk',
  });
  const valid = verify(
    'sha256',
    Buffer.from(`${h}.${p}`),
    { key: publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(s, 'base64url'),
  );
  if (!valid) return { ok: false, reason: 'bad signature' };
  const now = expect.nowSeconds ?? Math.floor(Date.now() / 1000);
  const leeway = expect.leewaySeconds ?? 30;
  if (typeof claims.exp !== 'number' || claims.exp + leeway < now) return { ok: false, reason: 'expired' };
  if (typeof claims.iat === 'number' && claims.iat - leeway > now)
    return { ok: false, reason: 'issued in the future' };
  if (expect.audience !== undefined && claims.aud !== expect.audience)
    return { ok: false, reason: 'wrong audience' };
  if (expect.issuer !== undefined && claims.iss !== expect.issuer)
    return { ok: false, reason: 'wrong issuer' };
  return { ok: true, claims };
}

export function newJti(): string {
  return randomUUID();
}
