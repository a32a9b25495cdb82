// `npx tsx bench/egress-proxy.ts`: cost per request of the egress proxy, as ratios from one run.
// Sequential HTTP GETs to a local server: direct, via the proxy's loopback TCP port (plugins without a
// network namespace), via the in-namespace forwarder + Unix socket (the sandboxed path, measured outside
// a namespace; baseline: the same forwarder piping to a dumb relay, which isolates the extra process hop),
// and a fresh CONNECT tunnel per request vs a fresh direct connection. Interleaved blocks.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FORWARDER_SOURCE } from '../src/egress/forwarder-script.js';
import { EgressPolicy, parseAllowList } from '../src/egress/policy.js';
import { EgressProxy } from '../src/egress/proxy.js';
import { createLogger } from '../src/logger.js';
import { summarize, timeInterleaved } from './lib/stats.js';

const N = Number(process.env.BENCH_CALLS ?? 1000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 100);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function get(agent: http.Agent, host: string, port: number, reqPath: string, auth?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      agent,
      host,
      port,
      path: reqPath,
      headers: auth ? { 'proxy-authorization': auth } : {},
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
}

/** CONNECT through the proxy, then one GET over the tunnel (connection: close). */
function tunnelGet(proxyPort: number, auth: string, target: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'CONNECT',
      path: `127.0.0.1:${target}`,
      headers: { 'proxy-authorization': auth },
      agent: false,
    });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) return reject(new Error(`CONNECT ${res.statusCode}`));
      socket.on('data', () => undefined);
      socket.on('end', () => resolve());
      socket.on('error', reject);
      socket.write(`GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    });
    req.on('error', reject);
    req.end();
  });
}

function freshGet(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () =>
      s.write(`GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`),
    );
    s.on('data', () => undefined);
    s.on('end', () => resolve());
    s.on('error', reject);
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'hay-egress-bench-'));
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const proxy = new EgressProxy({
    policy: new EgressPolicy({ allow: parseAllowList(`127.0.0.1:${port}`) }),
    logger: createLogger({ level: 'silent' }),
    runDir: path.join(dir, 'run'),
    maxConnectionsPerInstance: 64,
    idleTimeoutMs: 60_000,
    connectTimeoutMs: 5_000,
    platformTarget: () => ({ host: '127.0.0.1', port }),
  });
  const instance = await proxy.open({
    orgId: 'bench',
    pluginId: 'bench',
    rules: { hosts: 'all', label: 'bench' },
  });
  const tcp = new URL(await instance.tcpProxyUrl());
  const auth = `Basic ${Buffer.from(`hay:${tcp.password}`).toString('base64')}`;
  // Baseline for the sandboxed path: the same forwarder process, piping to a dumb relay (no proxy).
  const relaySocket = path.join(dir, 'relay.sock');
  const relay = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1');
    c.pipe(up);
    up.pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => relay.listen(relaySocket, r));
  const fwdPort = await freePort();
  const relayPort = await freePort();
  const forwarder = spawn(
    process.execPath,
    [
      '-e',
      FORWARDER_SOURCE,
      '--',
      `${fwdPort}=${instance.proxySocket}`,
      `${relayPort}=${relaySocket}`,
      '--',
      process.execPath,
      '-e',
      'setInterval(() => {}, 1e9)',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(relayPort, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }

  const agents = [0, 1, 2, 3].map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const target = `http://127.0.0.1:${port}/`;
  const [direct, viaTcp, viaForwarder, viaRelay, fresh, tunnel] = await timeInterleaved(N, WARMUP, [
    () => get(agents[0]!, '127.0.0.1', port, '/'),
    () => get(agents[1]!, '127.0.0.1', Number(tcp.port), target, auth),
    () => get(agents[2]!, '127.0.0.1', fwdPort, target),
    () => get(agents[3]!, '127.0.0.1', relayPort, '/'),
    () => freshGet(port),
    () => tunnelGet(Number(tcp.port), auth, port),
  ]);
  const s = {
    direct: summarize(direct!),
    viaProxyTcp: summarize(viaTcp!),
    viaForwarderUnixSocket: summarize(viaForwarder!),
    forwarderToDumbRelay: summarize(viaRelay!),
    freshConnectionDirect: summarize(fresh!),
    freshConnectTunnel: summarize(tunnel!),
  };
  const round = (x: number) => Math.round(x * 1000) / 1000;
  console.log(
    JSON.stringify(
      {
        calls: N,
        p50Ms: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v.p50)])),
        p99Ms: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v.p99)])),
        ratioP50: {
          proxyTcpVsDirect: round(s.viaProxyTcp.p50 / s.direct.p50),
          forwarderVsDirect: round(s.viaForwarderUnixSocket.p50 / s.direct.p50),
          forwarderProxyVsForwarderRelay: round(s.viaForwarderUnixSocket.p50 / s.forwarderToDumbRelay.p50),
          tunnelVsFreshDirect: round(s.freshConnectTunnel.p50 / s.freshConnectionDirect.p50),
        },
      },
      null,
      2,
    ),
  );
  for (const a of agents) a.destroy();
  forwarder.kill('SIGKILL');
  await new Promise<void>((r) => relay.close(() => r()));
  await proxy.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
}

await main();
