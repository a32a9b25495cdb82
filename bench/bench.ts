// `npm run bench`: the host's cost per tool call against baselines, in one run and one process tree.
// Sizes come from BENCH_* environment variables (see CONFIG) so the test suite can run it tiny.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { measureBurst, measureFloor } from './lib/burst.js';
import { measureDiscovery } from './lib/discovery.js';
import { measureGrowth, type GrowthRow } from './lib/growth.js';
import { measureHostProcess } from './lib/host-process.js';
import { JsonHttpClient } from './lib/http-client.js';
import { checkEcho, PLUGIN_ID, startBenchHost, unwrapTrpc, type BenchHost } from './lib/host-fixture.js';
import { connectDirect, GATEWAY_HEADERS, gatewayCall, startGateway } from './lib/mcp-baselines.js';
import {
  median,
  runLoad,
  summarize,
  timeInterleaved,
  timeSequential,
  type LoadResult,
  type Summary,
} from './lib/stats.js';
import { TrpcBatcher } from './lib/trpc-batcher.js';

const list = (name: string, fallback: number[]) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const values = raw.split(',').map((x) => Number(x.trim()));
  if (values.some((n) => !Number.isInteger(n) || n < 0))
    throw new Error(`${name} must be a comma-separated list of non-negative integers; got "${raw}"`);
  return values.filter((n) => n > 0);
};

const int = (name: string, fallback: number) => {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer; got "${raw}"`);
  return n;
};

const CONFIG = {
  /** Sequential timed calls per latency measurement (a, b, c). */
  calls: int('BENCH_CALLS', 3000),
  warmup: int('BENCH_WARMUP', 500),
  /** Total calls of each 100-in-flight run (d, e). */
  loadCalls: int('BENCH_LOAD_CALLS', 20000),
  concurrency: int('BENCH_CONCURRENCY', 100),
  /** Cold starts measured per side (f) and warm first calls (g). */
  coldRuns: int('BENCH_COLD_RUNS', 7),
  /** New organizations of (g); each also gives one (g0) control call. */
  warmFirstRuns: int('BENCH_WARM_FIRST_RUNS', 30),
  discoveryPlugins: int('BENCH_DISCOVERY_PLUGINS', 1000),
  /** Tenant burst: organizations that enable the test plugin and make a first call at once (0: skip). */
  burstOrgs: int('BENCH_BURST_ORGS', 1000),
  /** Connections the burst's requests share (an ingress's upstream pool); 0 = one per organization. */
  burstSockets: int('BENCH_BURST_SOCKETS', 256),
  /** Machine floor: bare-SDK spawn + initialize + call runs, and how many at a time. */
  floorSpawns: int('BENCH_FLOOR_SPAWNS', 40),
  floorConcurrency: int('BENCH_FLOOR_CONCURRENCY', 2 * os.availableParallelism()),
  /** 1: start the host as its own process (node bin/hay-plugins.js serve) for start time and idle RSS. */
  hostProcess: int('BENCH_HOST_PROCESS', 1),
  /** Cost growth table: organization counts (1 plugin each) and plugins per organization (1 org). */
  growthOrgs: list('BENCH_GROWTH_ORGS', [1, 10, 100, 1000]),
  growthPlugins: list('BENCH_GROWTH_PLUGINS', [1, 10, 50]),
  growthCalls: int('BENCH_GROWTH_CALLS', 500),
  growthLoadCalls: int('BENCH_GROWTH_LOAD_CALLS', 5000),
  /** 1: also measure the host's cold start with sandbox 'auto' (adds the ~10 s sandbox probe). */
  sandbox: int('BENCH_SANDBOX', 1),
  /**
   * Which host route feeds overheadRatio and throughputRatio: 'fast' (POST /v1/invoke), 'batch' (tRPC
   * batching; overhead from sequential tRPC) or 'trpc' (one tRPC request per call). All are printed.
   */
  route: (['fast', 'batch', 'trpc'] as const).find((m) => m === process.env.BENCH_ROUTE) ?? 'fast',
};

const rows: [string, string][] = [];
const mb = (bytes: number) => bytes / 1024 / 1024;
const fmt = (x: number, digits = 3) => x.toFixed(digits);
const lat = (s: Summary) => `p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  (n=${s.n})`;
const load = (r: LoadResult) =>
  `${Math.round(r.throughput)} calls/s  p50 ${fmt(r.latency.p50, 2)} ms  p99 ${fmt(r.latency.p99, 2)} ms  errors ${r.errors}/${r.total}` +
  (r.firstError ? `  first error: ${r.firstError.slice(0, 120)}` : '');
const row = (name: string, value: string) => {
  rows.push([name, value]);
  process.stderr.write(`  ${name}: ${value}\n`);
};

async function directStdio(): Promise<{ seq: Summary; coldMs: number[] }> {
  const client = await connectDirect();
  try {
    const seq = summarize(
      await timeSequential(CONFIG.calls, CONFIG.warmup, async (i) => {
        const r = await client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
        checkEcho(r, `m${i}`);
      }),
    );
    return { seq, coldMs: [] };
  } finally {
    await client.close();
  }
}

async function directColdStart(): Promise<number> {
  const t0 = performance.now();
  const client = await connectDirect();
  const r = await client.callTool({ name: 'echo', arguments: { message: 'cold' } });
  const ms = performance.now() - t0;
  checkEcho(r, 'cold');
  await client.close();
  return ms;
}

async function fastifyEcho(): Promise<Summary> {
  const app = Fastify({ logger: false });
  app.post('/echo', async (req) => req.body);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const http = new JsonHttpClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  try {
    return summarize(
      await timeSequential(CONFIG.calls, CONFIG.warmup, async (i) => {
        const res = await http.post('/echo', { message: `m${i}` });
        if (res.status !== 200) throw new Error(`echo route answered ${res.status}`);
      }),
    );
  } finally {
    http.close();
    await app.close();
  }
}

const invokeInput = (message: string) => ({ pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message } });

async function hostInvoke(h: BenchHost, apiKey: string, message: string): Promise<void> {
  const res = await h.http.post('/trpc/plugins.invokeTool', invokeInput(message), {
    authorization: `Bearer ${apiKey}`,
  });
  checkEcho(unwrapTrpc(res.body, 'plugins.invokeTool'), message);
}

/** The same call through `POST /v1/invoke` (plugins.invokeTool without tRPC). */
async function hostInvokeFast(h: BenchHost, apiKey: string, message: string): Promise<void> {
  const res = await h.http.post('/v1/invoke', invokeInput(message), { authorization: `Bearer ${apiKey}` });
  if (res.status !== 200)
    throw new Error(`POST /v1/invoke answered ${res.status}: ${JSON.stringify(res.body).slice(0, 200)}`);
  checkEcho(res.body, message);
}

async function gatewayLoad(): Promise<LoadResult> {
  const gw = await startGateway();
  const http = new JsonHttpClient(gw.url);
  const call = async (i: number) => {
    const res = await http.post('/mcp', gatewayCall(i, `m${i}`), GATEWAY_HEADERS);
    const body = res.body as { result?: unknown; error?: { message?: string } };
    if (res.status !== 200 || !body?.result)
      throw new Error(`gateway answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
    checkEcho(body.result, `m${i}`);
  };
  try {
    for (let i = 0; i < Math.min(CONFIG.warmup, 200); i++) await call(i);
    return await runLoad(CONFIG.loadCalls, CONFIG.concurrency, call);
  } finally {
    http.close();
    await gw.close();
  }
}

async function hostColdStart(h: BenchHost, run: number): Promise<number> {
  const org = await h.newOrgWithPlugin(`cold-${run}`);
  const p = h.host.services.registry.get(org.organizationId, PLUGIN_ID);
  // no instance of the plugin at all: a shared one (runtime.shared) serves every organization
  if (p) await h.host.services.instances.stopAllForPlugin(p.key, 'bench: cold start');
  const t0 = performance.now();
  await hostInvoke(h, org.apiKey, 'cold');
  const ms = performance.now() - t0;
  return ms;
}

async function main(): Promise<void> {
  process.stderr.write(`hay bench: ${JSON.stringify(CONFIG)}\n`);
  let errors = 0;

  const a = await directStdio();
  row('(a) direct SDK client -> echo server over stdio, sequential', lat(a.seq));
  const b = await fastifyEcho();
  row('(b) bare fastify JSON echo round trip, sequential', lat(b));

  const h = await startBenchHost();
  const rssInProcessIdle = process.memoryUsage().rss;
  let rssLoadPeak = 0;
  let instanceRss = 0;
  let c: Summary;
  let cFast: Summary;
  let dFast: LoadResult;
  let dTrpc: LoadResult;
  let dBatch: LoadResult;
  const hostCold: number[] = [];
  const directCold: number[] = [];
  const warmFirst: number[] = [];
  const warmControl: number[] = [];
  try {
    const org = await h.newOrgWithPlugin('bench');
    const [trpcMs, fastMs] = await timeInterleaved(CONFIG.calls, CONFIG.warmup, [
      (i) => hostInvoke(h, org.apiKey, `m${i}`),
      (i) => hostInvokeFast(h, org.apiKey, `m${i}`),
    ]);
    c = summarize(trpcMs ?? []);
    cFast = summarize(fastMs ?? []);
    row('(c1) host plugins.invokeTool (tRPC over HTTP), warm, sequential', lat(c));
    row('(c2) host POST /v1/invoke (same procedure, no tRPC), warm, sequential', lat(cFast));

    const rssSampler = setInterval(() => {
      rssLoadPeak = Math.max(rssLoadPeak, process.memoryUsage().rss);
    }, 100);
    try {
      dTrpc = await runLoad(CONFIG.loadCalls, CONFIG.concurrency, (i) => hostInvoke(h, org.apiKey, `m${i}`));
    } finally {
      clearInterval(rssSampler);
      rssLoadPeak = Math.max(rssLoadPeak, process.memoryUsage().rss);
    }
    const usage = await h.host.services.instances.usage();
    instanceRss = usage.instances.find((u) => u.pluginId === PLUGIN_ID)?.rssBytes ?? 0;
    row(`(d1) host, ${CONFIG.concurrency} in flight, one tRPC request per call`, load(dTrpc));
    const batcher = new TrpcBatcher(h.http, 'plugins.invokeTool', org.apiKey, CONFIG.concurrency);
    dBatch = await runLoad(CONFIG.loadCalls, CONFIG.concurrency, async (i) =>
      checkEcho(await batcher.call(invokeInput(`m${i}`)), `m${i}`),
    );
    row(
      `(d2) host, ${CONFIG.concurrency} in flight, tRPC batching (httpBatchLink wire format)`,
      load(dBatch),
    );
    dFast = await runLoad(CONFIG.loadCalls, CONFIG.concurrency, (i) =>
      hostInvokeFast(h, org.apiKey, `m${i}`),
    );
    row(`(d3) host, ${CONFIG.concurrency} in flight, POST /v1/invoke`, load(dFast));
    errors += dTrpc.errors + dBatch.errors + dFast.errors;

    for (let i = 0; i < CONFIG.coldRuns; i++) {
      directCold.push(await directColdStart());
      hostCold.push(await hostColdStart(h, i));
    }
    row(
      '(f) cold start, direct spawn + initialize + call, median',
      `${fmt(median(directCold), 1)} ms  runs ${directCold.map((x) => x.toFixed(0)).join(' ')}`,
    );
    row(
      '(f) cold start, host first call (new org, instance stopped), median',
      `${fmt(median(hostCold), 1)} ms  runs ${hostCold.map((x) => x.toFixed(0)).join(' ')}`,
    );

    // (g): the shared instance is running and hot again after (f) restarted it (an already-running instance)
    for (let i = 0; i < Math.min(CONFIG.warmup, 200); i++) await hostInvoke(h, org.apiKey, `r${i}`);
    for (let i = 0; i < CONFIG.warmFirstRuns; i++) {
      // creating the org, plugins.enable and the warmup are outside the timing
      const o = await h.newOrgWithPlugin(`warm-${i}`);
      const p = h.host.services.registry.get(o.organizationId, PLUGIN_ID);
      const spec = p && h.host.services.registry.toSpec(p);
      if (!p || !spec) throw new Error('test plugin not registered');
      await h.host.services.warmup.warm(o.organizationId, spec);
      // (g0), the control: a call of the warm org right after the same setup, before or after (g) in turn,
      // so both see the same machine state (the first call after other work is slower whoever makes it)
      const timed = async (apiKey: string, into: number[]) => {
        const t0 = performance.now();
        await hostInvoke(h, apiKey, 'first');
        into.push(performance.now() - t0);
      };
      if (i % 2 === 0) {
        await timed(o.apiKey, warmFirst);
        await timed(org.apiKey, warmControl);
      } else {
        await timed(org.apiKey, warmControl);
        await timed(o.apiKey, warmFirst);
      }
      await h.host.services.instances.stopInstance(o.organizationId, p.key, 'bench cleanup');
    }
    row(
      '(g) first call with a warm instance (new org, warmed), median',
      `${fmt(median(warmFirst))} ms  runs ${warmFirst.map((x) => x.toFixed(2)).join(' ')}`,
    );
    row(
      '(g0) the same position, a call of the already-warm org (control), median',
      `${fmt(median(warmControl))} ms  runs ${warmControl.map((x) => x.toFixed(2)).join(' ')}`,
    );
  } finally {
    await h.close();
  }

  const e = await gatewayLoad();
  row(`(e) SDK Streamable HTTP gateway -> one stdio client, ${CONFIG.concurrency} in flight`, load(e));
  errors += e.errors;

  let floor = { spawns: 0, concurrency: 0, seconds: 0, perSecond: 0 };
  let burst = {
    orgs: 0,
    errors: 0,
    firstError: undefined as string | undefined,
    totalMs: 0,
    p50Ms: 0,
    maxMs: 0,
    processes: 0,
  };
  if (CONFIG.burstOrgs > 0) {
    floor = await measureFloor(CONFIG.floorSpawns, CONFIG.floorConcurrency);
    row(
      `(i) machine floor: bare SDK spawn + initialize + call, ${floor.concurrency} in parallel`,
      `${fmt(floor.perSecond, 1)} /s  (${floor.spawns} in ${fmt(floor.seconds, 2)} s)`,
    );
    const hb = await startBenchHost();
    try {
      burst = await measureBurst(hb, CONFIG.burstOrgs, CONFIG.burstSockets || CONFIG.burstOrgs);
    } finally {
      await hb.close();
    }
    const floorMs = (burst.orgs / floor.perSecond) * 1000;
    row(
      `(j) burst: ${burst.orgs} orgs enable + first call at once (defaults)`,
      `${fmt(burst.totalMs, 0)} ms total (floor for ${burst.orgs} spawns ${fmt(floorMs, 0)} ms)  ` +
        `per org p50 ${fmt(burst.p50Ms, 0)} ms max ${fmt(burst.maxMs, 0)} ms  processes ${burst.processes}  ` +
        `errors ${burst.errors}/${burst.orgs}` +
        (burst.firstError ? `  first error: ${burst.firstError.slice(0, 120)}` : ''),
    );
  }

  let proc = { installed: { startMs: 0, rssIdleMb: 0 }, fresh: { startMs: 0, rssIdleMb: 0 } };
  if (CONFIG.hostProcess) {
    const fresh = await measureHostProcess({ reuse: false, settleMs: 0 });
    const installed = await measureHostProcess({ reuse: true, settleMs: 2_000 });
    proc = { installed, fresh };
    row(
      '(k) host process (bin/hay-plugins.js serve) until /healthz 200',
      `existing data dir ${fmt(installed.startMs, 0)} ms, new data dir ${fmt(fresh.startMs, 0)} ms`,
    );
    row(
      '(k) host process RSS, idle (existing data dir, embedded PGlite)',
      `${fmt(installed.rssIdleMb, 1)} MB`,
    );
  }
  row(
    '(l) bench process with the in-process host: RSS idle / peak under load; one idle instance',
    `${fmt(mb(rssInProcessIdle), 1)} MB / ${fmt(mb(rssLoadPeak), 1)} MB; instance ${fmt(mb(instanceRss), 1)} MB`,
  );

  let growth: GrowthRow[] = [];
  if (CONFIG.growthOrgs.length + CONFIG.growthPlugins.length > 0) {
    growth = await measureGrowth({
      orgCounts: CONFIG.growthOrgs,
      pluginCounts: CONFIG.growthPlugins,
      calls: CONFIG.growthCalls,
      loadCalls: CONFIG.growthLoadCalls,
      concurrency: CONFIG.concurrency,
    });
    for (const g of growth)
      row(
        `(m) growth: ${g.orgs} org(s) x ${g.pluginsPerOrg} plugin(s)`,
        `p50 ${fmt(g.p50Ms)} ms  p99 ${fmt(g.p99Ms)} ms  ${Math.round(g.throughput)} calls/s (${CONFIG.concurrency} in flight, ` +
          `errors ${g.errors})  RSS ${fmt(g.rssMb, 0)} MB  processes ${g.processes}`,
      );
  }

  let sandboxCold: number[] = [];
  if (CONFIG.sandbox) {
    const hs = await startBenchHost({ sandbox: 'auto' });
    try {
      for (let i = 0; i < CONFIG.coldRuns; i++) sandboxCold.push(await hostColdStart(hs, i));
    } finally {
      await hs.close();
    }
    row(
      "(f') cold start, host first call with sandbox 'auto', median",
      `${fmt(median(sandboxCold), 1)} ms  runs ${sandboxCold.map((x) => x.toFixed(0)).join(' ')}`,
    );
  } else sandboxCold = [];

  const disc =
    CONFIG.discoveryPlugins > 0
      ? await measureDiscovery(CONFIG.discoveryPlugins)
      : { plugins: 0, ok: 0, firstScanMs: 0, rescanMs: 0 };
  row(
    `(h) discovery of ${disc.plugins} plugin folders (${disc.ok} valid), first scan / rescan`,
    `${fmt(disc.firstScanMs, 0)} ms / ${fmt(disc.rescanMs, 0)} ms`,
  );

  const d = CONFIG.route === 'fast' ? dFast : CONFIG.route === 'batch' ? dBatch : dTrpc;
  const cRoute = CONFIG.route === 'fast' ? cFast : c;
  const result = {
    overheadRatio: round((cRoute.p50 - a.seq.p50) / b.p50),
    throughputRatio: round(d.throughput / e.throughput),
    coldStartRatio: round(median(hostCold) / median(directCold)),
    warmFirstCallRatio: round(median(warmFirst) / median(warmControl)),
    route: CONFIG.route,
    overheadRatioTrpc: round((c.p50 - a.seq.p50) / b.p50),
    overheadRatioFast: round((cFast.p50 - a.seq.p50) / b.p50),
    throughputRatioTrpc: round(dTrpc.throughput / e.throughput),
    throughputRatioBatch: round(dBatch.throughput / e.throughput),
    throughputRatioFast: round(dFast.throughput / e.throughput),
    discovery1000Ms: Math.round(disc.firstScanMs),
    errors,
    burstOrgs: burst.orgs,
    burstErrors: burst.errors,
    burstRatio: round(burst.totalMs / ((burst.orgs / floor.perSecond) * 1000)),
    burstMs: Math.round(burst.totalMs),
    burstProcesses: burst.processes,
    floorSpawnsPerSecond: round(floor.perSecond),
    hostRssIdleMb: round(proc.installed.rssIdleMb),
    hostStartMs: Math.round(proc.installed.startMs),
    hostStartFreshDataMs: Math.round(proc.fresh.startMs),
    benchRssIdleMb: round(mb(rssInProcessIdle)),
    benchRssLoadMb: round(mb(rssLoadPeak)),
    instanceRssMb: round(mb(instanceRss)),
    growth: growth.map((g) => ({
      ...g,
      p50Ms: round(g.p50Ms),
      p99Ms: round(g.p99Ms),
      throughput: Math.round(g.throughput),
      rssMb: Math.round(g.rssMb),
    })),
    directP50Ms: round(a.seq.p50),
    httpEchoP50Ms: round(b.p50),
    hostTrpcP50Ms: round(c.p50),
    hostTrpcP99Ms: round(c.p99),
    hostFastP50Ms: round(cFast.p50),
    hostFastP99Ms: round(cFast.p99),
    hostThroughputTrpc: Math.round(dTrpc.throughput),
    hostThroughputBatch: Math.round(dBatch.throughput),
    hostThroughputFast: Math.round(dFast.throughput),
    gatewayThroughput: Math.round(e.throughput),
    coldHostMs: round(median(hostCold)),
    coldDirectMs: round(median(directCold)),
    ...(sandboxCold.length ? { coldHostSandboxMs: round(median(sandboxCold)) } : {}),
    warmFirstCallMs: round(median(warmFirst)),
    warmFirstControlMs: round(median(warmControl)),
    warmFirstOverC1: round(median(warmFirst) / c.p50),
    discoveryPlugins: disc.plugins,
    rescanMs: Math.round(disc.rescanMs),
  };

  const width = Math.max(...rows.map(([n]) => n.length));
  console.log('\nHay plugin host benchmark');
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
  console.log(JSON.stringify(result));
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 0;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
