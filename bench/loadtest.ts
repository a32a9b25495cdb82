// `npm run loadtest`: concurrent plugins.invokeTool calls on the test plugin against a running host.
// LOADTEST_URL + LOADTEST_API_KEY (an org key with hay-plugin-test enabled) target an existing host;
// without them an in-process host is started. LOADTEST_TOTAL, LOADTEST_CONCURRENCY size the run;
// LOADTEST_ROUTE is 'trpc' (POST /trpc/plugins.invokeTool, default) or 'fast' (POST /v1/invoke).
import { JsonHttpClient } from './lib/http-client.js';
import { checkEcho, PLUGIN_ID, startBenchHost, unwrapTrpc, type BenchHost } from './lib/host-fixture.js';
import { runLoad } from './lib/stats.js';

const int = (name: string, fallback: number) => {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer; got "${raw}"`);
  return n;
};

async function main(): Promise<void> {
  const total = int('LOADTEST_TOTAL', 10_000);
  const concurrency = int('LOADTEST_CONCURRENCY', 100);
  const route = process.env.LOADTEST_ROUTE === 'fast' ? 'fast' : 'trpc';
  let bench: BenchHost | undefined;
  let url = process.env.LOADTEST_URL;
  let apiKey = process.env.LOADTEST_API_KEY;
  if (!url || !apiKey) {
    bench = await startBenchHost();
    url = bench.host.url;
    apiKey = (await bench.newOrgWithPlugin('loadtest')).apiKey;
  }
  const http = new JsonHttpClient(url, { authorization: `Bearer ${apiKey}` }, concurrency + 8);
  const call = async (i: number) => {
    const input = { pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: `m${i}` } };
    if (route === 'fast') {
      const res = await http.post('/v1/invoke', input);
      if (res.status !== 200)
        throw new Error(`POST /v1/invoke answered ${res.status}: ${JSON.stringify(res.body).slice(0, 200)}`);
      checkEcho(res.body, `m${i}`);
    } else
      checkEcho(
        unwrapTrpc((await http.post('/trpc/plugins.invokeTool', input)).body, 'plugins.invokeTool'),
        `m${i}`,
      );
  };
  try {
    await call(-1);
    const r = await runLoad(total, concurrency, call);
    console.log(
      `hay loadtest: ${url} route=${route} total=${total} concurrency=${concurrency}${bench ? ' (in-process host)' : ''}`,
    );
    console.log(`throughput   ${r.throughput.toFixed(0)} calls/s (${r.seconds.toFixed(2)} s)`);
    console.log(
      `latency      p50 ${r.latency.p50.toFixed(2)} ms  p95 ${r.latency.p95.toFixed(2)} ms  p99 ${r.latency.p99.toFixed(2)} ms`,
    );
    console.log(`errors       ${r.errors}${r.firstError ? ` (first: ${r.firstError.slice(0, 200)})` : ''}`);
    console.log(
      JSON.stringify({
        total,
        concurrency,
        route,
        throughput: Math.round(r.throughput),
        p50Ms: r.latency.p50,
        p95Ms: r.latency.p95,
        p99Ms: r.latency.p99,
        errors: r.errors,
      }),
    );
    if (r.errors > 0) process.exitCode = 1;
  } finally {
    http.close();
    await bench?.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
