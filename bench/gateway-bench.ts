// `npm run build && node dist/bench/gateway-bench.js`: a tool call through /mcp (both protocol eras,
// SDK clients) against the same call on POST /v1/invoke, interleaved in one run and one process tree.
// Reports ratios only (absolute numbers depend on the machine). Sizes: GW_BENCH_CALLS, GW_BENCH_LOAD.
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from '@modelcontextprotocol/client';
import { checkEcho, PLUGIN_ID, startBenchHost } from './lib/host-fixture.js';
import { runLoad, summarize, timeInterleaved } from './lib/stats.js';

const calls = Number(process.env.GW_BENCH_CALLS ?? 1000);
const loadCalls = Number(process.env.GW_BENCH_LOAD ?? 5000);

async function main(): Promise<void> {
  const h = await startBenchHost();
  try {
    const { apiKey } = await h.newOrgWithPlugin('gateway-bench');
    const headers = { authorization: `Bearer ${apiKey}` };
    const url = new URL(`${h.host.url}/mcp`);
    const legacy = new LegacyClient({ name: 'bench-legacy', version: '1' });
    await legacy.connect(new LegacyTransport(url, { requestInit: { headers } }));
    const modern = new ModernClient(
      { name: 'bench-modern', version: '1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await modern.connect(new ModernTransport(url, { requestInit: { headers } }));
    const name = `${PLUGIN_ID}__echo`;
    const viaInvoke = async (i: number) => {
      const res = await h.http.post(
        '/v1/invoke',
        { pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: `m${i}` } },
        headers,
      );
      checkEcho(res.body, `m${i}`);
    };
    const viaLegacy = async (i: number) =>
      checkEcho(await legacy.callTool({ name, arguments: { message: `m${i}` } }), `m${i}`);
    const viaModern = async (i: number) =>
      checkEcho(await modern.callTool({ name, arguments: { message: `m${i}` } }), `m${i}`);

    const [invoke, leg, mod] = (
      await timeInterleaved(calls, Math.min(200, calls), [viaInvoke, viaLegacy, viaModern])
    ).map(summarize);
    const out: Record<string, number> = {
      p50InvokeMs: invoke?.p50 ?? NaN,
      p50LegacyOverInvoke: (leg?.p50 ?? NaN) / (invoke?.p50 ?? NaN),
      p50ModernOverInvoke: (mod?.p50 ?? NaN) / (invoke?.p50 ?? NaN),
    };
    for (const [label, fn] of [
      ['invoke', viaInvoke],
      ['legacy', viaLegacy],
      ['modern', viaModern],
    ] as const) {
      const r = await runLoad(loadCalls, 100, fn);
      out[`${label}ThroughputPerS`] = Math.round(r.throughput);
      out[`${label}Errors`] = r.errors;
    }
    out.legacyThroughputOverInvoke = (out.legacyThroughputPerS ?? NaN) / (out.invokeThroughputPerS ?? NaN);
    out.modernThroughputOverInvoke = (out.modernThroughputPerS ?? NaN) / (out.invokeThroughputPerS ?? NaN);
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    await legacy.close();
    await modern.close();
  } finally {
    await h.close();
  }
}

await main();
