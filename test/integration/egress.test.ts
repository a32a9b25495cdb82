import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORWARDER_SOURCE } from '../../src/egress/forwarder-script.js';
import { createGuardedFetch } from '../../src/egress/guarded-fetch.js';
import { EgressPolicy, parseAllowList, type Resolver } from '../../src/egress/policy.js';
import { EgressProxy } from '../../src/egress/proxy.js';
import { EgressError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';

/**
 * The egress guard without a host: the guarded fetch (remote plugins) and the per-instance proxy
 * (sandboxed plugins) against a real loopback HTTP server. Loopback is denied by default, so every
 * "allowed" case carries an explicit operator entry for the test server's port.
 */
let server: http.Server;
let port = 0;
let hits: string[] = [];
let dir: string;
const logger = createLogger({ level: 'silent' });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hay-egress-'));
  server = http.createServer((req, res) => {
    hits.push(`${req.headers.host ?? ''} ${req.url ?? ''}`);
    if (req.url === '/big') {
      const body = JSON.stringify({ blob: 'x'.repeat(200_000) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else if (req.url === '/stream-big') {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < 50; i++) res.write('x'.repeat(10_000));
      res.end();
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    } else if (req.url === '/error') {
      res.writeHead(500, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
      res.end('internal secret: sk-remote-stack-trace');
    } else if (req.url === '/sse-small') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 40; i++) res.write(`data: ${'y'.repeat(5_000)}\n\n`);
      res.end();
    } else if (req.url === '/sse-big') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${'z'.repeat(100_000)}\n\n`);
      res.end();
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello from the test server');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

const all = { hosts: 'all' as const, label: 'plugin test' };
const fakeDns =
  (map: Record<string, string>): Resolver =>
  (host) =>
    Promise.resolve(map[host] ? [{ address: map[host], family: 4 }] : []);

function guard(allow: string, resolve?: Resolver, maxResponseBytes = 64 * 1024) {
  const policy = new EgressPolicy({ allow: parseAllowList(allow), ...(resolve ? { resolve } : {}) });
  return createGuardedFetch({
    policy,
    rules: all,
    maxResponseBytes,
    connectTimeoutMs: 2_000,
    headersTimeoutMs: 5_000,
  });
}

describe('guarded fetch (remote plugin connections made for a tenant)', () => {
  it('refuses a loopback URL with a clear egress error; nothing reaches the server', async () => {
    hits = [];
    const g = guard('');
    const err = await g
      .fetch(`http://127.0.0.1:${port}/trpc/admin.listOrganizations`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressError);
    expect((err as EgressError).code).toBe('EGRESS_DENIED');
    expect((err as EgressError).message).toContain(`may not reach 127.0.0.1:${port} (127.0.0.0/8`);
    expect(hits).toEqual([]);
    const meta = await g.fetch('http://169.254.169.254/latest/meta-data/').catch((e: unknown) => e);
    expect((meta as EgressError).message).toContain('169.254.0.0/16');
    const mapped = await g.fetch(`http://[::ffff:127.0.0.1]:${port}/`).catch((e: unknown) => e);
    expect((mapped as EgressError).code).toBe('EGRESS_DENIED');
    expect(hits).toEqual([]);
    await g.close();
  });

  it('a name resolving to loopback (DNS rebinding) is refused', async () => {
    hits = [];
    const g = guard('', fakeDns({ 'rebind.attacker.example': '127.0.0.1' }));
    await expect(g.fetch(`http://rebind.attacker.example:${port}/`)).rejects.toThrow(
      `rebind.attacker.example resolves to 127.0.0.1:${port}`,
    );
    expect(hits).toEqual([]);
    await g.close();
  });

  it('connects to exactly the address it checked (resolution happens once, in the policy)', async () => {
    hits = [];
    let lookups = 0;
    const resolve: Resolver = () => {
      lookups++;
      return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
    };
    // the name exists in no real DNS: the request can only arrive through the checked address
    const g = guard(`127.0.0.1:${port}`, resolve);
    const res = await g.fetch(`http://internal.example.invalid:${port}/hello`);
    expect(await res.text()).toBe('hello from the test server');
    expect(hits).toEqual([`internal.example.invalid:${port} /hello`]);
    expect(lookups).toBe(1);
    await g.close();
  });

  it('an operator entry allows exactly that address and port', async () => {
    const g = guard(`127.0.0.1:${port}`);
    expect((await g.fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    await expect(g.fetch(`http://127.0.0.1:${port + 1}/`)).rejects.toThrow(EgressError);
    await g.close();
  });

  it('a redirect to the metadata address is refused (every hop is checked)', async () => {
    const g = guard(`127.0.0.1:${port}`);
    const err = await g.fetch(`http://127.0.0.1:${port}/redirect`).catch((e: unknown) => e);
    expect((err as EgressError).code).toBe('EGRESS_DENIED');
    expect((err as EgressError).message).toContain('169.254.169.254:80');
    await g.close();
  });

  it('caps the response body with a clear error (declared and streamed lengths)', async () => {
    const g = guard(`127.0.0.1:${port}`);
    const declared = await g.fetch(`http://127.0.0.1:${port}/big`).catch((e: unknown) => e);
    expect((declared as EgressError).code).toBe('RESPONSE_TOO_LARGE');
    expect((declared as EgressError).message).toContain('larger than 65536 bytes');
    const res = await g.fetch(`http://127.0.0.1:${port}/stream-big`);
    const streamed = await res.text().catch((e: unknown) => e);
    expect((streamed as EgressError).code).toBe('RESPONSE_TOO_LARGE');
    expect(g.lastError?.code).toBe('RESPONSE_TOO_LARGE');
    await g.close();
  });

  it('caps each SSE event, not the whole stream', async () => {
    const g = guard(`127.0.0.1:${port}`);
    const small = await (await g.fetch(`http://127.0.0.1:${port}/sse-small`)).text();
    expect(small.length).toBeGreaterThan(64 * 1024 * 2);
    const big = await (await g.fetch(`http://127.0.0.1:${port}/sse-big`)).text().catch((e: unknown) => e);
    expect((big as EgressError).message).toContain('an event larger than 65536 bytes');
    await g.close();
  });

  it('reports a capped event stream with the JSON-RPC ids of the request that opened it', async () => {
    const g = guard(`127.0.0.1:${port}`);
    const seen: { code: string; ids: readonly (string | number)[] }[] = [];
    g.onStreamCapped((err, ids) => seen.push({ code: err.code, ids }));
    const batch = JSON.stringify([
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: {} },
      { jsonrpc: '2.0', method: 'notifications/progress' },
      { jsonrpc: '2.0', id: 'x', method: 'ping' },
    ]);
    const post = await g.fetch(`http://127.0.0.1:${port}/sse-big`, { method: 'POST', body: batch });
    await post.text().catch(() => undefined);
    const get = await g.fetch(`http://127.0.0.1:${port}/sse-big`);
    await get.text().catch(() => undefined);
    await (await g.fetch(`http://127.0.0.1:${port}/sse-small`)).text();
    expect(seen).toEqual([
      { code: 'RESPONSE_TOO_LARGE', ids: [7, 'x'] },
      { code: 'RESPONSE_TOO_LARGE', ids: [] },
    ]);
    await g.close();
  });

  it('never passes a remote non-2xx body on; the status and auth headers stay', async () => {
    const g = guard(`127.0.0.1:${port}`);
    const res = await g.fetch(`http://127.0.0.1:${port}/error`);
    expect(res.status).toBe(500);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    const text = await res.text();
    expect(text).toBe('HTTP 500 (remote body withheld)');
    expect(text).not.toContain('sk-remote');
    await g.close();
  });
});

function connectUnix(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let data = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(request));
    s.on('data', (c: string) => (data += c));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

describe('egress proxy (sandboxed plugins)', () => {
  const open = async (allow: string, hosts: 'all' | string[]) => {
    const proxy = new EgressProxy({
      policy: new EgressPolicy({ allow: parseAllowList(allow) }),
      logger,
      runDir: path.join(dir, 'run'),
      maxConnectionsPerInstance: 4,
      idleTimeoutMs: 5_000,
      connectTimeoutMs: 2_000,
      platformTarget: () => ({ host: '127.0.0.1', port }),
    });
    const instance = await proxy.open({ orgId: 'org', pluginId: 'p', rules: { hosts, label: 'plugin p' } });
    return { proxy, instance };
  };

  it('refuses CONNECT and plain HTTP to loopback by default', async () => {
    hits = [];
    const { proxy, instance } = await open('', 'all');
    const tunnel = await connectUnix(instance.proxySocket, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
    expect(tunnel).toMatch(/^HTTP\/1.1 403 Forbidden/);
    expect(tunnel).toContain('Egress denied: plugin p may not reach 127.0.0.1');
    const plain = await connectUnix(
      instance.proxySocket,
      `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`,
    );
    expect(plain).toMatch(/^HTTP\/1.1 403 Forbidden/);
    expect(hits).toEqual([]);
    await proxy.close();
  });

  it('lets an allowed destination through, both ways, and enforces manifest hosts', async () => {
    hits = [];
    const { proxy, instance } = await open(`127.0.0.1:${port}`, ['127.0.0.1']);
    const plain = await connectUnix(
      instance.proxySocket,
      `GET http://127.0.0.1:${port}/via-proxy HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`,
    );
    expect(plain).toMatch(/^HTTP\/1.1 200 OK/);
    expect(plain).toContain('hello from the test server');
    const tunnel = await connectUnix(
      instance.proxySocket,
      `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\nGET /tunnel HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    );
    expect(tunnel).toMatch(/^HTTP\/1.1 200 Connection Established/);
    expect(tunnel).toContain('hello from the test server');
    expect(hits.map((h) => h.split(' ')[1])).toEqual(['/via-proxy', '/tunnel']);
    const other = await connectUnix(instance.proxySocket, `CONNECT localhost:${port} HTTP/1.1\r\n\r\n`);
    expect(other).toContain('it is not in permissions.network.hosts');
    await proxy.close();
  });

  it('the loopback TCP listener requires the instance token', async () => {
    const { proxy, instance } = await open(`127.0.0.1:${port}`, 'all');
    const url = new URL(await instance.tcpProxyUrl());
    const request = (auth?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({
          host: url.hostname,
          port: Number(url.port),
          path: `http://127.0.0.1:${port}/`,
          headers: auth ? { 'proxy-authorization': auth } : {},
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await request()).toBe(407);
    expect(await request(`Basic ${Buffer.from('hay:wrong').toString('base64')}`)).toBe(407);
    expect(await request(`Basic ${Buffer.from(`hay:${url.password}`).toString('base64')}`)).toBe(200);
    await proxy.close();
  });

  it('the platform socket forwards only /v1/platform/*', async () => {
    hits = [];
    const { proxy, instance } = await open('', []);
    const admin = await connectUnix(
      instance.platformSocket,
      'POST /trpc/admin.createOrganization HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
    expect(admin).toMatch(/^HTTP\/1.1 403/);
    const ok = await connectUnix(
      instance.platformSocket,
      'POST /v1/platform/email/send HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
    expect(ok).toMatch(/^HTTP\/1.1 200/);
    expect(hits.map((h) => h.split(' ')[1])).toEqual(['/v1/platform/email/send']);
    await proxy.close();
  });

  it('bounds connections per instance, and close() frees listeners, sockets and tunnels', async () => {
    const { proxy, instance } = await open(`127.0.0.1:${port}`, 'all');
    const held: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(instance.proxySocket);
      await new Promise((r) => s.once('connect', r));
      s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
      await new Promise((r) => s.once('data', r));
      held.push(s);
    }
    const fifth = await connectUnix(instance.proxySocket, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`).catch(
      (e: unknown) => String(e),
    );
    expect(fifth).not.toContain('200'); // dropped at accept: maxConnections reached
    const closed = held.map((s) => new Promise((r) => s.once('close', r)));
    expect(proxy.openInstances).toBe(1);
    await proxy.close();
    await Promise.all(closed);
    expect(proxy.openInstances).toBe(0);
    expect(existsSync(instance.proxySocket)).toBe(false);
    expect(existsSync(instance.platformSocket)).toBe(false);
    await proxy.close(); // idempotent
  });
});

describe('in-namespace forwarder', () => {
  it('pipes its port to the socket, runs the command and exits with its status', async () => {
    const { proxy, instance } = await (async () => {
      const p = new EgressProxy({
        policy: new EgressPolicy({ allow: parseAllowList(`127.0.0.1:${port}`) }),
        logger,
        runDir: path.join(dir, 'run2'),
        maxConnectionsPerInstance: 4,
        idleTimeoutMs: 5_000,
        connectTimeoutMs: 2_000,
        platformTarget: () => ({ host: '127.0.0.1', port }),
      });
      return { proxy: p, instance: await p.open({ orgId: 'o', pluginId: 'p', rules: all }) };
    })();
    const free = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const child = `
      const http = require('node:http');
      http.get({ host: '127.0.0.1', port: ${free}, path: 'http://127.0.0.1:${port}/fwd' }, (res) => {
        let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => { process.stdout.write(b); process.exit(7); });
      }).on('error', (e) => { process.stdout.write(String(e)); process.exit(1); });`;
    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          '-e',
          FORWARDER_SOURCE,
          '--',
          `${free}=${instance.proxySocket}`,
          '--',
          process.execPath,
          '-e',
          child,
        ],
        { timeout: 10_000 },
        (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
      );
    });
    expect(result).toEqual({ code: 7, stdout: 'hello from the test server' });
    await proxy.close();
  });
});
