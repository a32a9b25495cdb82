import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new signing secret: `whsec_` + 32 random bytes, base64url. The whole string is the HMAC key. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** HMAC-SHA256 hex of `${timestamp}.${body}` keyed with the secret string. */
export function signTimestamped(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** `Hay-Signature` header value: `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (one v1 per secret). */
export function haySignatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${signTimestamped(s, timestamp, body)}`)].join(',');
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function equalText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  // compare equal-length buffers either way so the time does not depend on where they differ
  return timingSafeEqual(x.length === y.length ? x : y, y) && x.length === y.length;
}

/**
 * Verifies a `Hay-Signature` header against `body` with any of `secrets`: the timestamp must be within
 * `toleranceSeconds` of `nowSeconds` (replay window) and one v1 must match.
 */
export function verifyHaySignature(
  header: string | undefined,
  body: string | Buffer,
  secrets: readonly string[],
  options: { toleranceSeconds: number; nowSeconds: number },
): { ok: true } | { ok: false; reason: string } {
  if (!header) return { ok: false, reason: 'signature header missing' };
  let t: number | undefined;
  const given: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && v && /^\d{1,12}$/.test(v)) t = Number(v);
    else if (k === 'v1' && v && /^[0-9a-f]{64}$/.test(v)) given.push(v);
  }
  if (t === undefined || given.length === 0) return { ok: false, reason: 'signature header malformed' };
  if (Math.abs(options.nowSeconds - t) > options.toleranceSeconds)
    return { ok: false, reason: 'signature timestamp outside the tolerance' };
  for (const secret of secrets) {
    const expected = signTimestamped(secret, t, body);
    if (given.some((g) => equalHex(g, expected))) return { ok: true };
  }
  return { ok: false, reason: 'signature does not match' };
}

/** Verifies a plain body HMAC (GitHub style `sha256=<hex>`): `prefix` + encoding of HMAC(body). */
export function verifyBodyHmac(
  value: string | undefined,
  body: Buffer,
  secret: string,
  options: { prefix: string; encoding: 'hex' | 'base64' },
): boolean {
  if (!value?.startsWith(options.prefix)) return false;
  const expected = createHmac('sha256', secret).update(body).digest(options.encoding);
  return equalHex(value.slice(options.prefix.length), expected);
}

/** Constant-time comparison of a presented token with the expected one. */
export function verifyToken(value: string | undefined, expected: string): boolean {
  if (value === undefined) return false;
  return equalText(value, expected);
}
