import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthError, PermissionDeniedError } from '../../src/errors.js';
import { PlatformTokens, assertTokenGrants } from '../../src/security/platform-token.js';
import { MemoryTokenRevocations } from '../../src/security/token-revocations.js';

const subject = { orgId: 'org-1', pluginId: 'hay-plugin-email', pluginKey: 'inst-7', apis: ['email'] };

async function reason(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
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

  it('issues tokens that verify to their claims', async () => {
    const { token, claims } = await tokens.issue(subject);
    expect(token).toMatch(/^hpt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(claims).toMatchObject({ ...subject, exp: t + 60_000 });
    expect(await tokens.verify(token)).toEqual(claims);
    expect((await tokens.issue(subject)).claims.jti).not.toBe(claims.jti);
  });

  it('rejects a token signed with another secret', async () => {
    const other = new PlatformTokens({ secret: randomBytes(32), ttlMs: 60_000, now: () => t });
    const foreign = (await other.issue(subject)).token;
    expect(await reason(() => tokens.verify(foreign))).toBe('platform token signature is invalid');
    const random = new PlatformTokens({ ttlMs: 60_000, now: () => t });
    const randomToken = (await random.issue(subject)).token;
    expect(await reason(() => tokens.verify(randomToken))).toBe('platform token signature is invalid');
  });

  it('rejects a forged signature and a tampered payload', async () => {
    const { token } = await tokens.issue(subject);
    const [p, payload = '', sig = ''] = token.split('.');
    const flipped = Buffer.from(sig, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(await reason(() => tokens.verify(`${p}.${payload}.${flipped.toString('base64url')}`))).toBe(
      'platform token signature is invalid',
    );
    const widened = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
        apis: ['email', 'admin'],
      }),
    ).toString('base64url');
    expect(await reason(() => tokens.verify(`${p}.${widened}.${sig}`))).toBe(
      'platform token signature is invalid',
    );
    expect(await reason(() => tokens.verify(`${p}.${payload}.${sig.slice(0, 10)}`))).toBe(
      'platform token signature is invalid',
    );
  });

  it('rejects an expired token with the expiry time', async () => {
    const { token, claims } = await tokens.issue(subject, 1000);
    t += 999;
    expect((await tokens.verify(token)).jti).toBe(claims.jti);
    t += 1;
    expect(await reason(() => tokens.verify(token))).toBe(
      `platform token expired at ${new Date(claims.exp).toISOString()}`,
    );
  });

  it('rejects malformed tokens', async () => {
    const { token } = await tokens.issue(subject);
    const malformed = 'platform token is malformed (expected hpt1.<claims>.<signature>)';
    for (const bad of ['', 'abc', 'hpt1.a', `hpt2${token.slice(4)}`, `${token}.x`, 'hpt1.a+b.c', 42, null]) {
      expect(await reason(() => tokens.verify(bad))).toBe(malformed);
    }
  });

  it('checks granted APIs', async () => {
    const { claims } = await tokens.issue(subject);
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

  it('refresh: before exp and within the grace period yes, after it no', async () => {
    let now = 1_000_000;
    const tokens = new PlatformTokens({ ttlMs: 1_000, graceMs: 500, now: () => now });
    const { token } = await tokens.issue(subject);
    now += 1_200; // expired, within grace
    await expect(tokens.verify(token)).rejects.toThrow(/expired/);
    const fresh = await tokens.refresh(token);
    expect(await tokens.verify(fresh.token)).toMatchObject({ ...subject, exp: now + 1_000 });
    now += 400; // the old token is 1.6 s old: past exp + grace
    await expect(tokens.refresh(token)).rejects.toThrow(/past its refresh grace period/);
  });

  it('revoke refuses every earlier token of the pair, not of other pairs, and not later ones', async () => {
    const tokens = new PlatformTokens({ ttlMs: 60_000, graceMs: 60_000 });
    const old = (await tokens.issue(subject)).token;
    const other = (await tokens.issue({ ...subject, orgId: 'o2' })).token;
    await tokens.revoke('o', 'k');
    await expect(tokens.verify(old)).rejects.toThrow(/revoked/);
    await expect(tokens.refresh(old)).rejects.toThrow(/revoked/);
    expect((await tokens.verify(other)).orgId).toBe('o2');
    expect((await tokens.verify((await tokens.issue(subject)).token)).orgId).toBe('o');
  });

  it("two instances sharing one revocation store (two nodes) see each other's revocations", async () => {
    const secret = randomBytes(32);
    const store = new MemoryTokenRevocations();
    const a = new PlatformTokens({ secret, ttlMs: 60_000, revocations: store });
    const b = new PlatformTokens({ secret, ttlMs: 60_000, revocations: store });
    const token = (await a.issue(subject)).token;
    expect((await b.verify(token)).orgId).toBe('o');
    await a.revoke('o', 'k');
    await expect(b.verify(token)).rejects.toThrow(/revoked/);
    expect((await a.verify((await b.issue(subject)).token)).orgId).toBe('o');
  });
});
