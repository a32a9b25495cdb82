// `node dist/bench/call-stages.js`: where the wall time of ONE sequential warm call goes, per stage, on an
// in-process host (sandbox off, embedded PGlite). Timestamps (performance.now) at: the client's request
// start; the server's `http.server.request.start` diagnostics channel; the host's stdio send to the plugin;
// the write callback of that send; the plugin's answer arriving (the line reader); the server's
// `http.server.response.finish`; the client's response headers; the client's response end. Prints the p50
// of each stage in microseconds for each route, with the same client's bare fastify echo and the in-process
// `PluginService.invokeTool` (no HTTP) as references. Knobs: STAGES_CALLS (5000), STAGES_WARMUP (500),
// STAGES_ROUTES (`trpc,fast`).
import dc from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { JsonRpcLineReader } from '../src/runtime/process/jsonrpc-lines.js';
import { ProcessStdioTransport } from '../src/runtime/process/stdio-transport.js';
import { checkEcho, PLUGIN_ID, startBenchHost } from './lib/host-fixture.js';
import { percentile } from './lib/stats.js';

const int = (name: string, fallback: number): number => {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer; got "${raw}"`);
  return n;
};
const CALLS = int('STAGES_CALLS', 5000);
const WARMUP = int('STAGES_WARMUP', 500);
const ROUTES = (process.env.STAGES_ROUTES ?? 'trpc,fast').split(',');
const PATHS: Record<string, string> = { trpc: '/trpc/plugins.invokeTool', fast: '/v1/invoke' };

/** Timestamps of the call in progress (one at a time). */
const at: Record<string, number> = {};
let recording = false;
const mark = (what: string) => {
  if (recording) at[what] = performance.now();
};
dc.subscribe('http.server.request.start', () => mark('serverStart'));
dc.subscribe('http.server.response.finish', () => mark('serverFinish'));
const send = ProcessStdioTransport.prototype.send;
ProcessStdioTransport.prototype.send = function (this: ProcessStdioTransport, message) {
  mark('sent');
  const p = send.call(this, message);
  p.then(
    () => mark('written'),
    () => undefined,
  );
  return p;
};
const push = JsonRpcLineReader.prototype.push;
JsonRpcLineReader.prototype.push = function (this: JsonRpcLineReader, chunk: Buffer) {
  mark('answered');
  return push.call(this, chunk);
};

const STAGES: [string, string, string][] = [
  ['client -> server', 'clientStart', 'serverStart'],
  ['server -> stdio send', 'serverStart', 'sent'],
  ['send -> write done', 'sent', 'written'],
  ['send -> plugin answer in', 'sent', 'answered'],
  ['answer -> response finished', 'answered', 'serverFinish'],
  ['finished -> client headers', 'serverFinish', 'clientHeaders'],
  ['client headers -> end', 'clientHeaders', 'clientEnd'],
  ['total', 'clientStart', 'clientEnd'],
];

function post(agent: http.Agent, url: URL, path: string, body: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    mark('clientStart');
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        mark('clientHeaders');
        res.resume();
        res.on('end', () => {
          mark('clientEnd');
          resolve(res.statusCode ?? 0);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const h = await startBenchHost();
  const echo = Fastify({ logger: false });
  echo.post('/echo', async (req) => req.body);
  await echo.listen({ host: '127.0.0.1', port: 0 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const org = await h.newOrgWithPlugin('stages');
    const body = JSON.stringify({ pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: 'm' } });
    const report: Record<string, Record<string, number>> = {};
    const run = async (name: string, call: () => Promise<void>) => {
      for (let i = 0; i < WARMUP; i++) await call();
      const samples: Record<string, number[]> = {};
      for (let i = 0; i < CALLS; i++) {
        for (const k of Object.keys(at)) delete at[k];
        recording = true;
        await call();
        recording = false;
        for (const [label, from, to] of STAGES) {
          const a = at[from];
          const b = at[to];
          if (a !== undefined && b !== undefined) (samples[label] ??= []).push((b - a) * 1000);
        }
      }
      const row: Record<string, number> = {};
      for (const [label, xs] of Object.entries(samples)) {
        xs.sort((x, y) => x - y);
        row[label] = Math.round(percentile(xs, 50) * 10) / 10;
      }
      report[name] = row;
    };
    const echoUrl = new URL(`http://127.0.0.1:${(echo.server.address() as AddressInfo).port}`);
    await run('echo (b)', async () => {
      if ((await post(agent, echoUrl, '/echo', body)) !== 200) throw new Error('echo failed');
    });
    const plugins = h.host.services.plugins;
    const caller = { organizationId: org.organizationId, actor: 'key:bench', keyId: 'bench' };
    const input = { pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: 'm' } };
    await run('invokeTool in process', async () => {
      mark('clientStart');
      const r = await plugins.invokeTool(caller, input, new AbortController().signal, {
        signalPerRequest: true,
      });
      mark('clientEnd');
      checkEcho(r, 'm');
    });
    const hostUrl = new URL(h.host.url);
    for (const route of ROUTES) {
      const path = PATHS[route];
      if (!path) throw new Error(`STAGES_ROUTES: unknown route ${route}`);
      await run(route, async () => {
        if ((await post(agent, hostUrl, path, body, org.apiKey)) !== 200) throw new Error(`${route} failed`);
      });
    }
    console.log('p50 per stage, microseconds (sequential calls)');
    for (const [name, row] of Object.entries(report)) {
      console.log(`  ${name}`);
      for (const [label, us] of Object.entries(row)) console.log(`    ${label.padEnd(30)} ${us}`);
    }
    console.log(JSON.stringify(report));
  } finally {
    agent.destroy();
    await echo.close();
    await h.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
