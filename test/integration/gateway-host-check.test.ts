import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';

/**
 * DNS-rebinding protection on `/mcp`: a `Host` or `Origin` off the allow-list is refused with 403 and a
 * JSON-RPC error before authentication; the loopback names a loopback-bound host answers to pass. Raw
 * node:http, because fetch does not let a caller set `Host`.
 */

let t: TestHost;
let apiKey: string;

beforeAll(async () => {
  t = await startTestHost({
    plugins: { 'core/toolkit': toolkitPlugin('toolkit') },
    config: { apiUrl: 'https://hay.example.com/' },
  });
  apiKey = (await t.createOrganization('a')).apiKey;
});

afterAll(async () => {
  await t?.close();
});

const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

function post(headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  const url = new URL(`${t.url}/mcp`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // SSE or empty body: kept as text
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.end(INIT);
  });
}

describe('/mcp Host and Origin allow-list', () => {
  it('refuses a foreign Host with 403 and a JSON-RPC error, before authentication', async () => {
    const port = new URL(t.url).port;
    const withKey: Record<string, string>[] = [{ authorization: `Bearer ${apiKey}` }, {}];
    for (const auth of withKey) {
      const r = await post({ host: `evil.example:${port}`, ...auth });
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, data: { code: 'ORIGIN_NOT_ALLOWED' } },
      });
      expect(JSON.stringify(r.body)).toContain('Invalid Host: evil.example');
    }
  });

  it('refuses a foreign or opaque Origin even with a good Host and key', async () => {
    const port = new URL(t.url).port;
    for (const origin of ['http://evil.example', 'null']) {
      const r = await post({ host: `127.0.0.1:${port}`, origin, authorization: `Bearer ${apiKey}` });
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ error: { data: { code: 'ORIGIN_NOT_ALLOWED' } } });
    }
  });

  it('accepts loopback names, the HAY_API_URL host, and no Origin', async () => {
    const port = new URL(t.url).port;
    const auth = { authorization: `Bearer ${apiKey}` };
    const cases: Record<string, string>[] = [
      { host: `127.0.0.1:${port}` },
      { host: `localhost:${port}`, origin: `http://localhost:${port}` },
      { host: 'hay.example.com', origin: 'https://hay.example.com' },
    ];
    for (const h of cases) {
      const r = await post({ ...h, ...auth });
      expect(r.status, JSON.stringify(h)).toBe(200);
    }
    // a good Host without a key gets the ordinary 401, so the check runs first and only refuses names
    expect((await post({ host: `127.0.0.1:${port}` })).status).toBe(401);
  });
});
