import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, type TestHost } from '../helpers/host.js';

/** Session cookie, CSRF and security-header behaviour of the dashboard's backend over real HTTP. */
describe('dashboard sessions', () => {
  let t: TestHost;
  let org: { organizationId: string; apiKey: string };

  beforeAll(async () => {
    t = await startTestHost({ corePlugins: ['hay-plugin-test'] });
    org = await t.createOrganization('web-session');
  });
  afterAll(() => t.close());

  async function signIn(token: string) {
    const res = await fetch(`${t.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = setCookie.split(';')[0] ?? '';
    return { res, setCookie, cookie, body: (await res.json()) as Record<string, unknown> };
  }

  const trpc = (path: string, init: { cookie?: string; csrf?: string; bearer?: string; body?: unknown }) =>
    fetch(`${t.url}/trpc/${path}`, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: {
        ...(init.cookie ? { cookie: init.cookie } : {}),
        ...(init.csrf !== undefined ? { 'x-hay-csrf': init.csrf } : {}),
        ...(init.bearer ? { authorization: `Bearer ${init.bearer}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  it('refuses a wrong token and audits it', async () => {
    const { res, setCookie } = await signIn('hay_wrong');
    expect(res.status).toBe(401);
    expect(setCookie).toBe('');
  });

  it('sets an HttpOnly SameSite=Strict cookie (not Secure over http) and never returns the id', async () => {
    const { res, setCookie, cookie, body } = await signIn(org.apiKey);
    expect(res.status).toBe(200);
    expect(setCookie).toMatch(
      /^hay_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
    );
    expect(setCookie).not.toContain('Secure');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const id = cookie.split('=')[1] ?? '';
    expect(JSON.stringify(body)).not.toContain(id);
    expect(body).toMatchObject({ kind: 'org', organizationId: org.organizationId, role: 'admin' });
    expect(typeof body.csrfToken).toBe('string');
  });

  it('accepts the cookie only with its CSRF token; Bearer calls need none', async () => {
    const { cookie, body } = await signIn(org.apiKey);
    const csrf = String(body.csrfToken);
    expect((await trpc('plugins.list', { cookie, csrf })).status).toBe(200);
    expect((await trpc('plugins.list', { cookie })).status).toBe(403);
    expect(
      (await trpc('plugins.list', { cookie, csrf: csrf.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) }))
        .status,
    ).toBe(403);

    // a forged cross-site mutation (cookie, no token) changes nothing
    const forged = await trpc('plugins.enable', { cookie, body: { pluginId: 'hay-plugin-test' } });
    expect(forged.status).toBe(403);
    const hay = t.client(org.apiKey);
    expect((await hay.plugins.get.query({ pluginId: 'hay-plugin-test' })).enabled).toBe(false);
    // the upload route refuses it too
    const upload = await fetch(`${t.url}/v1/plugins/upload`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x--\r\n',
    });
    expect(upload.status).toBe(403);

    const ok = await trpc('plugins.enable', { cookie, csrf, body: { pluginId: 'hay-plugin-test' } });
    expect(ok.status).toBe(200);
    expect((await hay.plugins.get.query({ pluginId: 'hay-plugin-test' })).enabled).toBe(true);

    // Bearer wins over a cookie and needs no CSRF token
    expect((await trpc('plugins.list', { bearer: org.apiKey, cookie: 'hay_session=garbage' })).status).toBe(
      200,
    );
    expect((await trpc('plugins.list', { cookie: 'hay_session=garbage', csrf })).status).toBe(401);
  });

  it('signs out: DELETE needs the token, deletes the session and clears the cookie; audited', async () => {
    const { cookie, body } = await signIn(org.apiKey);
    const csrf = String(body.csrfToken);
    const del = (h: Record<string, string>) => fetch(`${t.url}/v1/session`, { method: 'DELETE', headers: h });
    expect((await del({ cookie })).status).toBe(403);
    expect((await trpc('plugins.list', { cookie, csrf })).status).toBe(200);
    const res = await del({ cookie, 'x-hay-csrf': csrf });
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await trpc('plugins.list', { cookie, csrf })).status).toBe(401);
    expect((await fetch(`${t.url}/v1/session`, { headers: { cookie } })).status).toBe(401);
    const audit = await t.client(org.apiKey).audit.list.query({ limit: 100 });
    const actions = audit.entries.map((e) => e.action);
    expect(actions).toContain('session.create');
    expect(actions).toContain('session.delete');
  });

  it('ends the sessions of a revoked key at once', async () => {
    const key = await t.admin.admin.createApiKey.mutate({
      organizationId: org.organizationId,
      role: 'member',
    });
    const { cookie, body } = await signIn(key.apiKey);
    const csrf = String(body.csrfToken);
    expect((await trpc('plugins.list', { cookie, csrf })).status).toBe(200);
    await t.admin.admin.revokeApiKey.mutate({ keyId: key.keyId });
    expect((await trpc('plugins.list', { cookie, csrf })).status).toBe(401);
  });

  it('an admin-token session reaches admin procedures', async () => {
    const { cookie, body } = await signIn(t.adminToken);
    expect(body.kind).toBe('admin');
    const res = await trpc('admin.listOrganizations', { cookie, csrf: String(body.csrfToken) });
    expect(res.status).toBe(200);
  });

  it('serves the page with a strict CSP, nosniff and no-referrer; API 404s stay JSON', async () => {
    const res = await fetch(`${t.url}/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    if (res.status === 200) {
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      const page = await fetch(`${t.url}/plugins/x`, { headers: { accept: 'text/html' } });
      expect(await page.text()).toBe(html);
      const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      const js = await fetch(`${t.url}${asset ?? ''}`);
      expect(js.headers.get('content-type')).toContain('text/javascript');
      expect(js.headers.get('cache-control')).toContain('immutable');
    } else {
      expect(res.status).toBe(503);
      expect(html).toContain('npm install');
    }
    const api404 = await fetch(`${t.url}/v1/nothing-here`, { headers: { accept: 'text/html' } });
    expect(api404.status).toBe(404);
    expect(api404.headers.get('content-type')).toContain('application/json');
    const asset404 = await fetch(`${t.url}/assets/nope.js`, { headers: { accept: 'text/html' } });
    expect(asset404.status).toBe(404);
  });
});

describe('dashboard sessions behind a TLS proxy', () => {
  it('marks the cookie Secure when HAY_API_URL is https', async () => {
    const t = await startTestHost({ corePlugins: [], config: { apiUrl: 'https://hay.example.com' } });
    try {
      const res = await fetch(`${t.url}/v1/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: t.adminToken }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    } finally {
      await t.close();
    }
  });
});
