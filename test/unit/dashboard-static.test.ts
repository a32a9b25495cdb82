import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, registerDashboardRoutes } from '../../src/dashboard/static-routes.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function app(distDir: string) {
  const a = Fastify();
  a.get('/v1/thing', async () => ({ ok: true }));
  registerDashboardRoutes(a, { distDir });
  return a;
}

describe('dashboard static routes', () => {
  it('without a build, / answers 503 saying how to build, and the API is unaffected', async () => {
    const a = app(path.join(os.tmpdir(), 'no-such-hay-dist'));
    const res = await a.inject({ url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm install');
    expect((await a.inject({ url: '/v1/thing' })).json()).toEqual({ ok: true });
    expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    await a.close();
  });

  it('serves only listed files with their types; history fallback for HTML requests off the API', async () => {
    const dist = mkdtempSync(path.join(os.tmpdir(), 'hay-dist-'));
    dirs.push(dist);
    mkdirSync(path.join(dist, 'assets'));
    writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>x</title>');
    writeFileSync(path.join(dist, 'assets', 'a-123.js'), 'export {}');
    writeFileSync(path.join(dist, 'assets', 'x.exe'), 'MZ');
    writeFileSync(path.join(path.dirname(dist), 'secret.txt'), 'TOPSECRET');
    const a = app(dist);
    const js = await a.inject({ url: '/assets/a-123.js' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toContain('immutable');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    const page = await a.inject({ url: '/plugins/abc?x=1', headers: { accept: 'text/html' } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).toContain('<title>x</title>');
    for (const url of ['/assets/x.exe', '/v1/none', '/trpc/x', '/assets/nope.js'])
      expect((await a.inject({ url, headers: { accept: 'text/html' } })).statusCode, url).toBe(404);
    // traversal never reaches the file system: at most the page itself comes back
    for (const url of ['/assets/../../secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
      const res = await a.inject({ url, headers: { accept: 'text/html' } });
      expect(res.body, url).not.toContain('TOPSECRET');
    }
    const json404 = await a.inject({ url: '/nothing', headers: { accept: 'application/json' } });
    expect(json404.statusCode).toBe(404);
    expect(json404.json()).toMatchObject({ statusCode: 404 });
    await a.close();
  });
});
