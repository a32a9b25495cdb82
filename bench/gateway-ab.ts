// `node dist/bench/gateway-ab.js`: the short form of gateway-bench for A/B runs and profiles of `/mcp`
// alone: rows echo, floor (the SDK v2 alone), mcp (2026-07-28 tools/call as raw JSON) and legacy (a
// 2025-11-25 session's tools/call as raw JSON, answered as JSON-RPC over SSE), sequential p50 interleaved
// in blocks, then each at 100 in flight. No SDK client rows (their own cost hides the host's). Prints
// "profile window <row>: <fromUs> <toUs>" on stderr (the clock of `node --cpu-prof`, for
// `cpuprofile-summary`). The last line is JSON. Sizes: GW_AB_CALLS (sequential, 600), GW_AB_LOAD (3000),
// GW_AB_ROWS (comma list, all). `<row>CpuUsPerCall`: this process's CPU per call at 100 in flight (host and
// bench client, not the plugin process), steadier than throughput when other processes share the cores.
import http from 'node:http';
import { checkEcho, PLUGIN_ID, startBenchHost } from './lib/host-fixture.js';
import { JsonHttpClient } from './lib/http-client.js';
import { modernCall, startSdkFloor } from './lib/sdk-floor.js';
import { runLoad, summarize, timeInterleaved } from './lib/stats.js';

const calls = Number(process.env.GW_AB_CALLS ?? 600);
const loadCalls = Number(process.env.GW_AB_LOAD ?? 3000);
const rows = (process.env.GW_AB_ROWS ?? 'echo,floor,mcp,legacy').split(',');

function resultOf(body: unknown): unknown {
  const b = body as { result?: unknown } | undefined;
  if (b?.result === undefined) throw new Error(`JSON-RPC error: ${JSON.stringify(body).slice(0, 200)}`);
  return b.result;
}

/** POSTs JSON over a keep-alive agent; resolves with the status, headers and the body as text. */
function postText(
  agent: http.Agent,
  url: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The JSON-RPC message of a one-message SSE answer (`data: {...}`; a priming event has empty data). */
function sseMessage(res: { status: number; text: string }): unknown {
  const text = res.text;
  const line = text.split('\n').find((l) => l.startsWith('data: {'));
  if (!line) throw new Error(`no SSE data in ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(line.slice(6)) as unknown;
}

async function main(): Promise<void> {
  const h = await startBenchHost();
  const floor = await startSdkFloor();
  const floorHttp = new JsonHttpClient(floor.url);
  try {
    const { apiKey } = await h.newOrgWithPlugin('gateway-ab');
    const auth = { authorization: `Bearer ${apiKey}` };
    const name = `${PLUGIN_ID}__echo`;
    // a 2025-11-25 session opened by hand (initialize + initialized), then reused by every legacy call
    const legacyHeaders = {
      ...auth,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
    };
    const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
    const mcpUrl = `${h.host.url}/mcp`;
    const init = await postText(agent, mcpUrl, legacyHeaders, {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'ab', version: '1' } },
    });
    const sessionId = init.headers['mcp-session-id'];
    if (typeof sessionId !== 'string')
      throw new Error(`initialize answered ${init.status} without a session id`);
    const session = { ...legacyHeaders, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    await postText(agent, mcpUrl, session, { jsonrpc: '2.0', method: 'notifications/initialized' });
    const fns: Record<string, (i: number) => Promise<void>> = {
      echo: async (i) => {
        const res = await floorHttp.post('/echo', { message: `m${i}` });
        if (res.status !== 200) throw new Error(`echo answered ${res.status}`);
      },
      floor: async (i) => {
        const c = modernCall(i, 'echo', `m${i}`);
        checkEcho(resultOf((await floorHttp.post('/mcp', c.body, c.headers)).body), `m${i}`);
      },
      mcp: async (i) => {
        const c = modernCall(i, name, `m${i}`);
        checkEcho(resultOf((await h.http.post('/mcp', c.body, { ...c.headers, ...auth })).body), `m${i}`);
      },
      legacy: async (i) => {
        const res = await postText(agent, mcpUrl, session, {
          jsonrpc: '2.0',
          id: i + 1,
          method: 'tools/call',
          params: { name, arguments: { message: `m${i}` } },
        });
        checkEcho(resultOf(sseMessage(res)), `m${i}`);
      },
    };
    const seq = rows.map((r) => {
      const f = fns[r];
      if (!f) throw new Error(`unknown row ${r}`);
      return f;
    });
    const from = process.hrtime.bigint() / 1000n;
    const samples = await timeInterleaved(calls, Math.min(200, calls), seq);
    process.stderr.write(`profile window sequential: ${from} ${process.hrtime.bigint() / 1000n}\n`);
    const out: Record<string, number> = {};
    const p50: Record<string, number> = {};
    rows.forEach((r, i) => {
      p50[r] = summarize(samples[i] ?? []).p50;
      out[`p50${r}Ms`] = Math.round((p50[r] ?? NaN) * 1000) / 1000;
    });
    for (const r of rows) {
      if (r === 'echo') continue;
      const lf = process.hrtime.bigint() / 1000n;
      const cpu0 = process.cpuUsage();
      const res = await runLoad(loadCalls, 100, fns[r] as (i: number) => Promise<void>);
      const cpu = process.cpuUsage(cpu0);
      // this process's CPU (host + bench client; not the plugin process) per call: steadier than wall
      // clock on a shared machine
      out[`${r}CpuUsPerCall`] = Math.round((cpu.user + cpu.system) / loadCalls);
      process.stderr.write(`profile window ${r}-load: ${lf} ${process.hrtime.bigint() / 1000n}\n`);
      out[`${r}PerS`] = Math.round(res.throughput);
      out[`${r}Errors`] = res.errors;
      if (res.firstError) process.stderr.write(`${r}: ${res.firstError}\n`);
    }
    const echo = p50.echo ?? NaN;
    for (const r of ['floor', 'mcp', 'legacy'])
      if (p50[r] !== undefined) out[`${r}OverEcho`] = Math.round(((p50[r] - echo) / echo) * 100) / 100;
    process.stdout.write(`${JSON.stringify(out)}\n`);
    agent.destroy();
  } finally {
    floorHttp.close();
    await floor.close();
    await h.close();
  }
}

await main();
