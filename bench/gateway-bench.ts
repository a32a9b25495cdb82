// `npm run build && node dist/bench/gateway-bench.js`: a tool call through /mcp against issue 11's targets,
// in one run and one process tree. Rows (sequential p50, interleaved in blocks; then 100 in flight):
//   direct  the SDK client -> echo server over stdio (the bench's (a))
//   echo    a bare fastify JSON echo round trip (the bench's (b))
//   floor   the SDK v2 alone: fastify + createMcpHandler + toNodeHandler answering tools/call itself
//   invoke  POST /v1/invoke on the host
//   mcp     POST /mcp, 2026-07-28 tools/call sent as raw JSON by the same HTTP client as echo/floor/peer
//   legacy, modern  the same through the SDK clients of both eras (their own cost included)
//   peer    the SDK Streamable HTTP peer of `npm run bench` (e), 100 in flight only
// The last line is JSON. Sizes: GW_BENCH_CALLS (sequential, 1000), GW_BENCH_LOAD (100 in flight, 5000).
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from '@modelcontextprotocol/client';
import { checkEcho, PLUGIN_ID, startBenchHost } from './lib/host-fixture.js';
import { JsonHttpClient } from './lib/http-client.js';
import { connectDirect, GATEWAY_HEADERS, gatewayCall, startGateway } from './lib/mcp-baselines.js';
import { modernCall, startSdkFloor } from './lib/sdk-floor.js';
import { runLoad, summarize, timeInterleaved } from './lib/stats.js';

const calls = Number(process.env.GW_BENCH_CALLS ?? 1000);
const loadCalls = Number(process.env.GW_BENCH_LOAD ?? 5000);

function resultOf(body: unknown): unknown {
  const b = body as { result?: unknown; error?: { message?: string } } | undefined;
  if (b?.result === undefined) throw new Error(`JSON-RPC error: ${JSON.stringify(body).slice(0, 200)}`);
  return b.result;
}

async function main(): Promise<void> {
  const h = await startBenchHost();
  const direct = await connectDirect();
  const floor = await startSdkFloor();
  const peer = await startGateway();
  const floorHttp = new JsonHttpClient(floor.url);
  const peerHttp = new JsonHttpClient(peer.url);
  try {
    const { apiKey } = await h.newOrgWithPlugin('gateway-bench');
    const auth = { authorization: `Bearer ${apiKey}` };
    const url = new URL(`${h.host.url}/mcp`);
    const legacy = new LegacyClient({ name: 'bench-legacy', version: '1' });
    await legacy.connect(new LegacyTransport(url, { requestInit: { headers: auth } }));
    const modern = new ModernClient(
      { name: 'bench-modern', version: '1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await modern.connect(new ModernTransport(url, { requestInit: { headers: auth } }));
    const name = `${PLUGIN_ID}__echo`;
    const fns = {
      direct: async (i: number) =>
        checkEcho(await direct.callTool({ name: 'echo', arguments: { message: `m${i}` } }), `m${i}`),
      echo: async (i: number) => {
        const res = await floorHttp.post('/echo', { message: `m${i}` });
        if (res.status !== 200) throw new Error(`echo answered ${res.status}`);
      },
      floor: async (i: number) => {
        const c = modernCall(i, 'echo', `m${i}`);
        checkEcho(resultOf((await floorHttp.post('/mcp', c.body, c.headers)).body), `m${i}`);
      },
      invoke: async (i: number) => {
        const res = await h.http.post(
          '/v1/invoke',
          { pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: `m${i}` } },
          auth,
        );
        checkEcho(res.body, `m${i}`);
      },
      mcp: async (i: number) => {
        const c = modernCall(i, name, `m${i}`);
        checkEcho(resultOf((await h.http.post('/mcp', c.body, { ...c.headers, ...auth })).body), `m${i}`);
      },
      legacy: async (i: number) =>
        checkEcho(await legacy.callTool({ name, arguments: { message: `m${i}` } }), `m${i}`),
      modern: async (i: number) =>
        checkEcho(await modern.callTool({ name, arguments: { message: `m${i}` } }), `m${i}`),
      peer: async (i: number) =>
        checkEcho(
          resultOf((await peerHttp.post('/mcp', gatewayCall(i, `m${i}`), GATEWAY_HEADERS)).body),
          `m${i}`,
        ),
    };
    const sequential = ['direct', 'echo', 'floor', 'invoke', 'mcp', 'legacy', 'modern'] as const;
    const samples = await timeInterleaved(
      calls,
      Math.min(200, calls),
      sequential.map((k) => fns[k]),
    );
    const p50 = Object.fromEntries(sequential.map((k, i) => [k, summarize(samples[i] ?? []).p50])) as Record<
      (typeof sequential)[number],
      number
    >;
    const out: Record<string, number> = {};
    for (const k of sequential) out[`p50${k[0]?.toUpperCase()}${k.slice(1)}Ms`] = p50[k];
    const perS: Record<string, number> = {};
    for (const k of ['peer', 'floor', 'invoke', 'mcp', 'legacy', 'modern'] as const) {
      const r = await runLoad(loadCalls, 100, fns[k]);
      perS[k] = r.throughput;
      out[`${k}ThroughputPerS`] = Math.round(r.throughput);
      out[`${k}Errors`] = r.errors;
      if (r.firstError) process.stderr.write(`${k}: ${r.firstError}\n`);
    }
    const ratio = (x: number, y: number) => Math.round((x / y) * 100) / 100;
    // issue 11's targets, defined as issue 10's: (host p50 - direct p50) / echo p50 <= 1.5; >= 5x peer
    out.overheadRatioMcp = ratio(p50.mcp - p50.direct, p50.echo);
    out.throughputRatioMcp = ratio(perS.mcp ?? NaN, perS.peer ?? NaN);
    out.overheadRatioInvoke = ratio(p50.invoke - p50.direct, p50.echo);
    // what the SDK v2 alone costs, in the same units: no plugin and no host behind it
    out.overheadRatioSdkFloor = ratio(p50.floor - p50.echo, p50.echo);
    out.throughputRatioSdkFloor = ratio(perS.floor ?? NaN, perS.peer ?? NaN);
    out.p50McpOverInvoke = ratio(p50.mcp, p50.invoke);
    out.p50LegacyOverInvoke = ratio(p50.legacy, p50.invoke);
    out.p50ModernOverInvoke = ratio(p50.modern, p50.invoke);
    out.mcpThroughputOverInvoke = ratio(perS.mcp ?? NaN, perS.invoke ?? NaN);
    process.stdout.write(`${JSON.stringify(out)}\n`);
    await legacy.close();
    await modern.close();
  } finally {
    floorHttp.close();
    peerHttp.close();
    await direct.close();
    await peer.close();
    await floor.close();
    await h.close();
  }
}

await main();
