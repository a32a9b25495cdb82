import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

/** A running Streamable HTTP server: `url` is its MCP endpoint (`http://host:port/mcp`). */
export interface HttpServing {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `createServer()` over stateless Streamable HTTP at `/mcp` (one server per request, JSON answers):
 * how a remote plugin's own server runs. Other paths answer 404. `port` 0 picks a free port.
 */
export async function serveHttp(
  createServer: () => McpServer,
  options: { port?: number; host?: string } = {},
): Promise<HttpServing> {
  const host = options.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/mcp') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const mcp = createServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    mcp
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The answer of httpFetch: status, headers and the whole body as text (bounded by `maxBytes`). */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * An HTTP(S) request that goes through the proxy in HTTPS_PROXY / HTTP_PROXY when the host set one (the
 * host routes a plugin's outbound traffic through its egress proxy; Node's fetch ignores those variables),
 * else directly. The tunnel is a CONNECT to the proxy; TLS is end to end. Bodies over `maxBytes` (default
 * 1 MiB) fail.
 */
export async function httpFetch(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    signal?: AbortSignal;
    maxBytes?: number;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<HttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  if (!secure && target.protocol !== 'http:')
    throw new Error(`httpFetch: ${target.protocol} URLs are not supported`);
  const port = Number(target.port) || (secure ? 443 : 80);
  const env = init.env ?? process.env;
  const proxyRaw =
    (secure ? (env.HTTPS_PROXY ?? env.https_proxy) : undefined) ?? env.HTTP_PROXY ?? env.http_proxy;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const proxy = proxyRaw && !noProxy.includes(target.hostname) ? new URL(proxyRaw) : undefined;
  let socket: Socket | undefined;
  if (proxy) socket = await tunnel(proxy, target.hostname, port, init.signal);
  if (socket && secure) socket = tls.connect({ socket, servername: target.hostname });
  const maxBytes = init.maxBytes ?? 1024 * 1024;
  const lib = secure ? (await import('node:https')).default : http;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = lib.request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port,
        path: `${target.pathname}${target.search}`,
        method: init.method ?? 'GET',
        headers: {
          ...(init.headers ?? {}),
          ...(init.body !== undefined ? { 'content-length': Buffer.byteLength(init.body) } : {}),
        },
        ...(socket ? { createConnection: () => socket } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            req.destroy(new Error(`httpFetch: the response is larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

function tunnel(proxy: URL, host: string, port: number, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const req = http.request({
      hostname: proxy.hostname,
      port: Number(proxy.port) || 80,
      method: 'CONNECT',
      path: `${host.includes(':') ? `[${host}]` : host}:${port}`,
      ...(proxy.username
        ? {
            headers: {
              'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`,
            },
          }
        : {}),
      ...(signal ? { signal } : {}),
    });
    req.on('connect', (res, socket) => {
      if (res.statusCode === 200) resolve(socket);
      else {
        socket.destroy();
        reject(
          new Error(`httpFetch: the egress proxy refused ${host}:${port} (HTTP ${res.statusCode ?? 0})`),
        );
      }
    });
    req.on('error', reject);
    req.end();
  });
}
