// `npx tsx bench/egress-sandbox.ts`: cost per request of the real sandboxed egress path, as ratios from one
// run. One client script makes sequential keep-alive HTTP GETs (and fresh CONNECT tunnels) to a local
// server: run on the host directly (baseline), and inside `bwrap --unshare-net` through the in-namespace
// forwarder, the bound Unix socket and the host's EgressProxy (what a sandboxed plugin does with
// HTTP_PROXY). The client times itself, so process start-up is not counted. Needs bubblewrap.
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FORWARDER_SOURCE } from '../src/egress/forwarder-script.js';
import { SANDBOX_PROXY_PORT, SANDBOX_PROXY_SOCKET } from '../src/egress/plugin-egress.js';
import { EgressPolicy, parseAllowList } from '../src/egress/policy.js';
import { EgressProxy } from '../src/egress/proxy.js';
import { createLogger } from '../src/logger.js';
import { summarize } from './lib/stats.js';

const N = Number(process.env.BENCH_CALLS ?? 1000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 100);
/** How the sandboxed client names the server: an address (no DNS) or a host name (BENCH_TARGET_NAME=localhost). */
const TARGET_NAME = process.env.BENCH_TARGET_NAME ?? '127.0.0.1';
const VIA = process.env.BENCH_RESOLVE_VIA;

/** argv: mode (direct|proxy|tunnel) host port target-port n warmup; prints a JSON array of ms. */
const CLIENT = `
const http = require('node:http');
const [mode, host, port, target, n, warmup, name = '127.0.0.1'] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function once() {
  return new Promise((resolve, reject) => {
    if (mode === 'tunnel') {
      const req = http.request({ host, port: Number(port), method: 'CONNECT', path: name + ':' + target, agent: false });
      req.on('connect', (res, s) => {
        if (res.statusCode !== 200) return reject(new Error('CONNECT ' + res.statusCode));
        s.on('data', () => {}); s.on('end', resolve); s.on('error', reject);
        s.write('GET / HTTP/1.1\\r\\nhost: 127.0.0.1\\r\\nconnection: close\\r\\n\\r\\n');
      });
      req.on('error', reject);
      return req.end();
    }
    const req = http.request({ agent, host, port: Number(port),
      path: mode === 'proxy' ? 'http://' + name + ':' + target + '/' : '/' });
    req.on('response', (res) => { if (res.statusCode !== 200) reject(new Error('status ' + res.statusCode)); res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end();
  });
}
(async () => {
  for (let i = 0; i < Number(warmup); i++) await once().catch(() => {});
  const out = [];
  // a failed request counts as -1 (the caller reports failures apart from latencies)
  for (let i = 0; i < Number(n); i++) { const t = performance.now(); const ok = await once().then(() => true, () => false); out.push(ok ? performance.now() - t : -1); }
  process.stdout.write(JSON.stringify(out));
  agent.destroy();
})().catch((e) => { process.stderr.write(String(e)); process.exit(1); });
`;

function run(argv: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`exit ${code}: ${err}`)),
    );
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'hay-egress-sbx-'));
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const proxy = new EgressProxy({
    policy: new EgressPolicy({
      allow: parseAllowList(`127.0.0.1:${port},localhost:${port}`),
      dnsCacheMs: Number(process.env.BENCH_DNS_CACHE_MS ?? 30_000),
      // BENCH_RESOLVE_VIA=<real name>: each resolution costs a real DNS query of that name, answered 127.0.0.1
      ...(VIA
        ? {
            resolve: (h: string) =>
              lookup(VIA, { all: true }).then(() =>
                h === 'localhost' ? [{ address: '127.0.0.1', family: 4 }] : [],
              ),
          }
        : {}),
    }),
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
  const node = process.execPath;
  const sandboxed = (mode: string) => [
    'bwrap',
    '--ro-bind', '/', '/',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/run',
    '--dir', '/run/hay',
    '--bind', instance.proxySocket, SANDBOX_PROXY_SOCKET,
    '--unshare-net',
    '--die-with-parent',
    node, '-e', FORWARDER_SOURCE, '--', `${SANDBOX_PROXY_PORT}=${SANDBOX_PROXY_SOCKET}`, '--',
    node, '-e', CLIENT, mode, '127.0.0.1', String(SANDBOX_PROXY_PORT), String(port), String(N), String(WARMUP), TARGET_NAME,
  ]; // prettier-ignore
  const host = (mode: string) => [
    node,
    '-e',
    CLIENT,
    mode,
    '127.0.0.1',
    String(port),
    String(port),
    String(N),
    String(WARMUP),
  ];
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const samples: Record<string, number[]> = { direct: [], sandboxProxy: [], sandboxTunnel: [] };
  for (let r = 0; r < rounds; r++) {
    samples.direct!.push(...(await run(host('direct'))));
    samples.sandboxProxy!.push(...(await run(sandboxed('proxy'))));
    samples.sandboxTunnel!.push(...(await run(sandboxed('tunnel'))));
  }
  const s = Object.fromEntries(
    Object.entries(samples).map(([k, v]) => [k, summarize(v.filter((x) => x >= 0))]),
  );
  const failed = Object.fromEntries(
    Object.entries(samples).map(([k, v]) => [k, v.filter((x) => x < 0).length]),
  );
  const round = (x: number) => Math.round(x * 1000) / 1000;
  console.log(
    JSON.stringify(
      {
        calls: N * rounds,
        p50Ms: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v.p50)])),
        p99Ms: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v.p99)])),
        meanMs: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v.mean)])),
        failed,
        ratioP50: { sandboxProxyVsDirect: round(s.sandboxProxy!.p50 / s.direct!.p50) },
      },
      null,
      2,
    ),
  );
  await proxy.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
}

await main();
