import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthError, PermissionDeniedError } from '../../src/errors.js';
import { PlatformTokens, assertTokenGrants } from '../../src/security/platform-token.js';

const subject = { orgId: 'org-1', pluginId: 'hay-plugin-email', pluginKey: 'inst-7', apis: ['email'] };

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('UNAUTHORIZED');
    return (err as AuthError).message;
  }
  throw new Error('expected a throw');
}

describe('PlatformTokens', () => {
  let t = 1_700_000_000_000;
  const tokens = new PlatformTokens({ secret: randomBytes(32), ttlMs: 60_000, now: () => t });

  it('issues tokens that verify to their claims', () => {
    const { token, claims } = tokens.issue(subject);
    expect(token).toMatch(/^hpt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(claims).toMatchObject({ ...subject, exp: t + 60_000 });
    expect(tokens.verify(token)).toEqual(claims);
    expect(tokens.issue(subject).claims.jti).not.toBe(claims.jti);
  });

  it('rejects a token signed with another secret', () => {
    const other = new PlatformTokens({ secret: randomBytes(32), ttlMs: 60_000, now: () => t });
    expect(reason(() => tokens.verify(other.issue(subject).token))).toBe(
      'platform token signature is invalid',
    );
    const random = new PlatformTokens({ ttlMs: 60_000, now: () => t });
    expect(reason(() => tokens.verify(random.issue(subject).token))).toBe(
      'platform token signature is invalid',
    );
  });

  it('rejects a forged signature and a tampered payload', () => {
    const { token } = tokens.issue(subject);
    const [p, payload = '', sig = ''] = token.split('.');
    const flipped = Buffer.from(sig, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(reason(() => tokens.verify(`${p}.${payload}.${flipped.toString('base64url')}`))).toBe(
      'platform token signature is invalid',
    );
    const widened = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
        apis: ['email', 'admin'],
      }),
    ).toString('base64url');
    expect(reason(() => tokens.verify(`${p}.${widened}.${sig}`))).toBe('platform token signature is invalid');
    expect(reason(() => tokens.verify(`${p}.${payload}.${sig.slice(0, 10)}`))).toBe(
      'platform token signature is invalid',
    );
  });

  it('rejects an expired token with the expiry time', () => {
    const { token, claims } = tokens.issue(subject, 1000);
    t += 999;
    expect(tokens.verify(token).jti).toBe(claims.jti);
    t += 1;
    expect(reason(() => tokens.verify(token))).toBe(
      `platform token expired at ${new Date(claims.exp).toISOString()}`,
    );
  });

  it('rejects malformed tokens', () => {
    const { token } = tokens.issue(subject);
    const malformed = 'platform token is malformed (expected hpt1.<claims>.<signature>)';
    for (const bad of ['', 'abc', 'hpt1.a', `hpt2${token.slice(4)}`, `${token}.x`, 'hpt1.a+b.c', 42, null]) {
      expect(reason(() => tokens.verify(bad))).toBe(malformed);
    }
  });

  it('checks granted APIs', () => {
    const { claims } = tokens.issue(subject);
    expect(() => assertTokenGrants(claims, 'email')).not.toThrow();
    expect(() => assertTokenGrants(claims, 'sms')).toThrow(PermissionDeniedError);
    expect(() => assertTokenGrants(claims, 'sms')).toThrow(
      'Plugin hay-plugin-email does not have permission to access sms. Add "sms" to permissions.api in manifest.json',
    );
  });

  it('refuses short secrets', () => {
    expect(() => new PlatformTokens({ secret: randomBytes(16), ttlMs: 1 })).toThrow(/at least 32 bytes/);
  });
});

describe('PlatformTokens refresh and revocation (issue 9)', () => {
  const subject = { orgId: 'o', pluginId: 'p', pluginKey: 'k', apis: ['email'] };

  it('refresh: before exp and within the grace period yes, after it no', () => {
    let now = 1_000_000;
    const tokens = new PlatformTokens({ ttlMs: 1_000, graceMs: 500, now: () => now });
    const { token } = tokens.issue(subject);
    now += 1_200; // expired, within grace
    expect(() => tokens.verify(token)).toThrow(/expired/);
    const fresh = tokens.refresh(token);
    expect(tokens.verify(fresh.token)).toMatchObject({ ...subject, exp: now + 1_000 });
    now += 400; // the old token is 1.6 s old: past exp + grace
    expect(() => tokens.refresh(token)).toThrow(/past its refresh grace period/);
  });

  it('revoke refuses every earlier token of the pair, not of other pairs, and not later ones', () => {
    const tokens = new PlatformTokens({ ttlMs: 60_000, graceMs: 60_000 });
    const old = tokens.issue(subject).token;
    const other = tokens.issue({ ...subject, orgId: 'o2' }).token;
    tokens.revoke('o', 'k');
    expect(() => tokens.verify(old)).toThrow(/revoked/);
    expect(() => tokens.refresh(old)).toThrow(/revoked/);
    expect(tokens.verify(other).orgId).toBe('o2');
    expect(tokens.verify(tokens.issue(subject).token).orgId).toBe('o');
  });
});
