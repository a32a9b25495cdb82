import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { EgressError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { EgressPolicy, EgressRules } from './policy.js';

export interface EgressProxyOptions {
  policy: EgressPolicy;
  logger: Logger;
  /** Folder of the per-instance Unix sockets (created 0700). */
  runDir: string;
  /** Open client connections per instance listener; more are refused. */
  maxConnectionsPerInstance: number;
  /** A tunnel or request with no traffic for this long is closed. */
  idleTimeoutMs: number;
  /** Bound on connecting to the destination. */
  connectTimeoutMs: number;
  /** Where the host's platform API listens (for the platform socket); a getter, read per request. */
  platformTarget: () => { host: string; port: number };
}

/** One (org, plugin) instance's way out. `close()` stops its listeners and cuts its tunnels; idempotent. */
export interface InstanceEgress {
  /** Unix socket of the allow-listing proxy (HTTP CONNECT and absolute-form HTTP). */
  readonly proxySocket: string;
  /** Unix socket forwarding only `/v1/platform/*` requests to the host's platform API. */
  readonly platformSocket: string;
  /** A loopback TCP listener of the same proxy, for launches without a network namespace; URL with token. */
  tcpProxyUrl(): Promise<string>;
  close(): Promise<void>;
}

interface Party {
  orgId: string;
  pluginId: string;
  rules: EgressRules;
}

/**
 * The host side of egress for sandboxed plugins: per instance, a proxy that lets a request through only
 * when the policy allows its host (manifest hosts) and resolved address (public or operator-allowed), then
 * connects to exactly the checked address. Reached through a Unix socket bound into the plugin's network
 * namespace (see FORWARDER_SOURCE) or, without a namespace, a loopback port that requires a per-instance
 * token (Proxy-Authorization). Bounded: connections per instance, idle timeout, header timeout.
 */
export class EgressProxy {
  readonly #o: EgressProxyOptions;
  readonly #instances = new Set<InstanceEgress>();
  #closed = false;

  constructor(options: EgressProxyOptions) {
    this.#o = options;
  }

  /** Opens the listeners of one instance. */
  async open(party: Party): Promise<InstanceEgress> {
    if (this.#closed) throw new EgressError('EGRESS_DENIED', 'The egress proxy is shut down');
    await mkdir(this.#o.runDir, { recursive: true, mode: 0o700 });
    const id = randomBytes(6).toString('hex');
    const proxySocket = path.join(this.#o.runDir, `${id}.px`);
    const platformSocket = path.join(this.#o.runDir, `${id}.pl`);
    const log = this.#o.logger.child({ orgId: party.orgId, pluginId: party.pluginId, component: 'egress' });
    const token = randomBytes(18).toString('base64url');
    const sockets = new Set<net.Socket>();
    const track = (s: net.Socket) => {
      if (sockets.has(s)) return; // a reused keep-alive socket is tracked once
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    };
    const servers: net.Server[] = [];
    const proxy = this.#proxyServer(party, log, track, undefined);
    const platform = this.#platformServer(log, track);
    await listenUnix(proxy, proxySocket);
    servers.push(proxy);
    try {
      await listenUnix(platform, platformSocket);
      servers.push(platform);
    } catch (err) {
      await closeServer(proxy, sockets);
      throw err;
    }
    let tcp: Promise<string> | undefined;
    let closing: Promise<void> | undefined;
    const instance: InstanceEgress = {
      proxySocket,
      platformSocket,
      tcpProxyUrl: () => {
        tcp ??= (async () => {
          const server = this.#proxyServer(party, log, track, token);
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => resolve());
          });
          servers.push(server);
          const { port } = server.address() as net.AddressInfo;
          return `http://hay:${token}@127.0.0.1:${port}`;
        })();
        return tcp;
      },
      close: () => {
        closing ??= (async () => {
          this.#instances.delete(instance);
          await tcp?.catch(() => undefined);
          await Promise.all(servers.map((s) => closeServer(s, sockets)));
          await rm(proxySocket, { force: true });
          await rm(platformSocket, { force: true });
        })();
        return closing;
      },
    };
    this.#instances.add(instance);
    return instance;
  }

  /** Number of open instance proxies (for tests and health). */
  get openInstances(): number {
    return this.#instances.size;
  }

  /** Closes every instance's listeners and tunnels. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#instances].map((i) => i.close()));
  }

  #proxyServer(
    party: Party,
    log: Logger,
    track: (s: net.Socket) => void,
    token: string | undefined,
  ): http.Server {
    const o = this.#o;
    const server = http.createServer({ requestTimeout: 0, headersTimeout: o.idleTimeoutMs });
    server.maxConnections = o.maxConnectionsPerInstance;
    server.keepAliveTimeout = o.idleTimeoutMs;
    server.on('connection', (s: net.Socket) => {
      track(s);
      s.setTimeout(o.idleTimeoutMs, () => s.destroy());
    });
    const authorized = (req: http.IncomingMessage): boolean =>
      token === undefined || basicTokenMatches(req.headers['proxy-authorization'], token);

    server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      client.on('error', () => client.destroy());
      if (!authorized(req)) return refuseRaw(client, 407, 'Proxy authentication required');
      const target = parseAuthority(req.url ?? '');
      if (!target) return refuseRaw(client, 400, 'CONNECT needs host:port');
      o.policy.resolve(target.host, target.port, party.rules).then(
        (checked) => {
          const upstream = net.connect({ host: checked.address, port: checked.port });
          track(upstream);
          const timer = setTimeout(() => upstream.destroy(), o.connectTimeoutMs).unref();
          upstream.setTimeout(o.idleTimeoutMs, () => upstream.destroy());
          const done = () => {
            client.destroy();
            upstream.destroy();
          };
          upstream.once('connect', () => {
            clearTimeout(timer);
            // tunnels carry interactive traffic (TLS handshakes, small requests): no Nagle delay on either leg
            upstream.setNoDelay(true);
            client.setNoDelay(true);
            client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
            if (head.length > 0) upstream.write(head);
            upstream.pipe(client);
            client.pipe(upstream);
          });
          upstream.on('error', (err) => {
            clearTimeout(timer);
            if (!upstream.remoteAddress && client.writable)
              refuseRaw(client, 502, `Cannot connect to ${target.host}:${target.port}: ${errCode(err)}`);
            else done();
          });
          upstream.on('close', done);
          client.on('close', done);
        },
        (err: unknown) => {
          log.info({ host: target.host, port: target.port, reason: errText(err) }, 'egress refused');
          refuseRaw(client, 403, errText(err));
        },
      );
    });

    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (!authorized(req)) {
        res.writeHead(407, { 'proxy-authenticate': 'Basic realm="hay"', 'content-type': 'text/plain' });
        res.end('Proxy authentication required\n');
        return;
      }
      let url: URL;
      try {
        url = new URL(req.url ?? '');
        if (url.protocol !== 'http:') throw new Error('scheme');
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('The proxy takes absolute http:// URLs, or CONNECT host:port for https\n');
        return;
      }
      const port = url.port === '' ? 80 : Number(url.port);
      o.policy.resolve(url.hostname, port, party.rules).then(
        (checked) => {
          const headers = { ...req.headers };
          delete headers['proxy-authorization'];
          delete headers['proxy-connection'];
          const upstream = http.request({
            host: checked.address,
            port: checked.port,
            method: req.method,
            path: `${url.pathname}${url.search}`,
            headers: { ...headers, host: url.host },
            setHost: false,
            timeout: o.idleTimeoutMs,
          });
          upstream.once('socket', track);
          upstream.on('timeout', () => upstream.destroy(new Error('idle timeout')));
          upstream.on('response', (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          });
          upstream.on('error', (err) => {
            if (!res.headersSent) {
              res.writeHead(502, { 'content-type': 'text/plain' });
              res.end(`Cannot reach ${url.host}: ${errCode(err)}\n`);
            } else res.destroy();
          });
          req.pipe(upstream);
        },
        (err: unknown) => {
          log.info({ host: url.hostname, port, reason: errText(err) }, 'egress refused');
          // the marker tells a refusal by this proxy from a 403 of the destination (src/builder runtime)
          res.writeHead(403, { 'content-type': 'text/plain', 'x-hay-egress': 'denied' });
          res.end(`${errText(err)}\n`);
        },
      );
    });
    return server;
  }

  /** Forwards only `/v1/platform/<api>/<method>` to the host; everything else is 403. */
  #platformServer(log: Logger, track: (s: net.Socket) => void): http.Server {
    const o = this.#o;
    const server = http.createServer({ requestTimeout: 0, headersTimeout: o.idleTimeoutMs });
    server.maxConnections = o.maxConnectionsPerInstance;
    server.on('connection', (s: net.Socket) => {
      track(s);
      s.setTimeout(o.idleTimeoutMs, () => s.destroy());
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const target = (req.url ?? '').startsWith('/') ? (req.url ?? '') : '';
      if (!/^\/v1\/platform\/[^?#]*/.test(target) || target.includes('..')) {
        log.info({ path: target.slice(0, 100) }, 'platform socket refused a path');
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: { code: 'EGRESS_DENIED', message: 'Only /v1/platform/* is reachable' } }),
        );
        return;
      }
      const { host, port } = o.platformTarget();
      const upstream = http.request({
        host,
        port,
        method: req.method,
        path: target,
        headers: req.headers,
        timeout: o.idleTimeoutMs,
      });
      upstream.on('timeout', () => upstream.destroy(new Error('idle timeout')));
      upstream.on('response', (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => {
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'Platform API unreachable' } }));
        } else res.destroy();
      });
      req.pipe(upstream);
    });
    return server;
  }
}

function basicTokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[1]) return false;
  const given = Buffer.from(
    Buffer.from(m[1], 'base64')
      .toString('utf8')
      .replace(/^[^:]*:/, ''),
  );
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function parseAuthority(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (!m?.[1] || !m[2]) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1], port } : undefined;
}

function refuseRaw(socket: net.Socket, status: number, message: string): void {
  const reason = http.STATUS_CODES[status] ?? 'Error';
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

async function listenUnix(server: net.Server, socketPath: string): Promise<void> {
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  // The plugin runs as another uid; only its sandbox has this path bound, so the mode can be open.
  await chmod(socketPath, 0o666);
}

function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'error';
}
