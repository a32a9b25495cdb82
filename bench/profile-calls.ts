// `node dist/bench/profile-calls.js`: what ONE warm `plugins.invokeTool` costs the host, as counts (database
// statements, promises and other async resources, JSON.parse/stringify calls, audit records, stdio writes to
// the plugin, CPU microseconds of the host and of the plugin process) averaged over PROFILE_CALLS sequential
// calls, per route. Counts are repeatable on a loaded machine where wall-clock times are not. Run it under
// `node --cpu-prof` for a profile of the same calls (PROFILE_LOAD_CALLS adds a 100-in-flight phase).
import { createHook } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import Fastify from 'fastify';
import { ProcessStdioTransport } from '../src/runtime/process/stdio-transport.js';
import { JsonHttpClient } from './lib/http-client.js';
import { connectDirect } from './lib/mcp-baselines.js';
import { checkEcho, PLUGIN_ID, startBenchHost, unwrapTrpc } from './lib/host-fixture.js';
import { runLoad } from './lib/stats.js';

const int = (name: string, fallback: number): number => {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer; got "${raw}"`);
  return n;
};
const CALLS = int('PROFILE_CALLS', 2000);
const WARMUP = int('PROFILE_WARMUP', 500);
const LOAD_CALLS = int('PROFILE_LOAD_CALLS', 0);
/** trpc = c1, fast = c2 (POST /v1/invoke), echo = (b) the bare fastify baseline, direct = (a) the SDK client. */
const ROUTES = (process.env.PROFILE_ROUTES ?? 'echo,direct,trpc,fast').split(',');

const counts = new Map<string, number>();
let counting = false;
const bump = (what: string, n = 1) => {
  if (counting) counts.set(what, (counts.get(what) ?? 0) + n);
};

// database statements of the embedded database, whatever issues them
for (const method of ['query', 'exec', 'transaction'] as const) {
  const proto = PGlite.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[method];
  if (!original) continue;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    bump(`db.${method}`);
    return original.apply(this, args);
  };
}
const parse = JSON.parse;
JSON.parse = function (...args: Parameters<typeof JSON.parse>) {
  bump('JSON.parse');
  return parse(...args);
} as typeof JSON.parse;
const stringify = JSON.stringify;
JSON.stringify = function (...args: Parameters<typeof JSON.stringify>) {
  bump('JSON.stringify');
  return stringify(...args);
} as typeof JSON.stringify;
const send = ProcessStdioTransport.prototype.send;
ProcessStdioTransport.prototype.send = function (this: ProcessStdioTransport, message) {
  bump('stdio.send');
  return send.call(this, message);
};
// async_hooks slow every promise down: PROFILE_ASYNC=0 for CPU times and profiles
if (int('PROFILE_ASYNC', 1) === 1)
  createHook({
    init(_id, type) {
      bump(`async.${type}`);
    },
  }).enable();

/** CPU seconds (user + system) of a process from /proc, or 0. */
function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const h = await startBenchHost();
  const echo = Fastify({ logger: false });
  echo.post('/echo', async (req) => req.body);
  await echo.listen({ host: '127.0.0.1', port: 0 });
  const echoHttp = new JsonHttpClient(`http://127.0.0.1:${(echo.server.address() as AddressInfo).port}`);
  const direct = await connectDirect();
  try {
    const org = await h.newOrgWithPlugin('profile');
    let auditRecords = 0;
    const audit = h.host.services.audit;
    const record = audit.record.bind(audit);
    audit.record = (entry) => {
      if (counting) auditRecords++;
      record(entry);
    };
    const input = (m: string) => ({ pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: m } });
    const auth = { authorization: `Bearer ${org.apiKey}` };
    const calls: Record<string, (m: string) => Promise<void>> = {
      trpc: async (m) => {
        const res = await h.http.post('/trpc/plugins.invokeTool', input(m), auth);
        checkEcho(unwrapTrpc(res.body, 'plugins.invokeTool'), m);
      },
      echo: async (m) => {
        const res = await echoHttp.post('/echo', input(m));
        if (res.status !== 200) throw new Error(`echo answered ${res.status}`);
      },
      direct: async (m) => {
        checkEcho(await direct.callTool({ name: 'echo', arguments: { message: m } }), m);
      },
      fast: async (m) => {
        const res = await h.http.post('/v1/invoke', input(m), auth);
        checkEcho(res.body, m);
      },
    };
    const pluginPid = (route: string) =>
      route === 'direct'
        ? ((direct.transport as { pid?: number | null } | undefined)?.pid ?? 0)
        : route === 'echo'
          ? 0
          : (h.host.services.instances.listInstances({}).find((i) => i.pluginId === PLUGIN_ID)?.pid ?? 0);
    const report: Record<string, unknown> = { loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) };
    for (const route of ROUTES) {
      const call = calls[route];
      if (!call) throw new Error(`PROFILE_ROUTES: unknown route ${route}`);
      for (let i = 0; i < WARMUP; i++) await call(`w${i}`);
      const pid = pluginPid(route);
      const cpu0 = process.cpuUsage();
      const plugin0 = procCpuSeconds(pid);
      const t0 = performance.now();
      counts.clear();
      auditRecords = 0;
      counting = true;
      const from = process.hrtime.bigint() / 1000n;
      for (let i = 0; i < CALLS; i++) await call(`m${i}`);
      counting = false;
      // the same clock as a .cpuprofile's timestamps (microseconds): crop a profile to this window
      process.stderr.write(`profile window ${route}: ${from} ${process.hrtime.bigint() / 1000n}\n`);
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const perCall: Record<string, number> = {};
      for (const [k, v] of [...counts.entries()].sort()) perCall[k] = Math.round((v / CALLS) * 100) / 100;
      perCall['audit.record'] = auditRecords / CALLS;
      report[route] = {
        perCall,
        wallUsPerCall: Math.round((wallMs * 1000) / CALLS),
        benchProcessCpuUsPerCall: Math.round((cpu.user + cpu.system) / CALLS),
        pluginCpuUsPerCall: Math.round(((procCpuSeconds(pid) - plugin0) * 1e6) / CALLS),
      };
      if (LOAD_CALLS > 0) {
        const lcpu0 = process.cpuUsage();
        const lplugin0 = procCpuSeconds(pid);
        const lfrom = process.hrtime.bigint() / 1000n;
        const r = await runLoad(LOAD_CALLS, 100, (i) => call(`l${i}`));
        process.stderr.write(`profile window ${route}-load: ${lfrom} ${process.hrtime.bigint() / 1000n}\n`);
        const lcpu = process.cpuUsage(lcpu0);
        (report[route] as Record<string, unknown>).load100 = {
          callsPerSecond: Math.round(r.throughput),
          errors: r.errors,
          benchProcessCpuUsPerCall: Math.round((lcpu.user + lcpu.system) / LOAD_CALLS),
          pluginCpuUsPerCall: Math.round(((procCpuSeconds(pid) - lplugin0) * 1e6) / LOAD_CALLS),
        };
      }
    }
    console.log(stringify(report, null, 2));
  } finally {
    echoHttp.close();
    await echo.close();
    await direct.close();
    await h.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
