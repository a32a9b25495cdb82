// `node dist/bench/ab-invoke.js`: an A/B of the host's service-level tool call (PluginService.invokeTool on
// an in-process host, no HTTP), variants alternated in blocks in ONE process so both see the same load.
// Reports CPU microseconds of the host process per call (process.cpuUsage) per block and the median per
// variant. Knobs: AB_CALLS (calls per block, 2000), AB_ROUNDS (blocks per variant, 6), AB_IN_FLIGHT (100).
// Variants: `perCall` = the caller's signal with a fresh AbortSignal per call in the instance manager (what
// callers without CallOptions.signalPerRequest get); `perRequest` = the request's signal handed on as is.
import { checkEcho, PLUGIN_ID, startBenchHost } from './lib/host-fixture.js';
import { median, runLoad } from './lib/stats.js';

const int = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
};
const CALLS = int('AB_CALLS', 2000);
const ROUNDS = int('AB_ROUNDS', 6);
const IN_FLIGHT = int('AB_IN_FLIGHT', 100);

async function main(): Promise<void> {
  const h = await startBenchHost();
  try {
    const org = await h.newOrgWithPlugin('ab');
    const plugins = h.host.services.plugins;
    const caller = { organizationId: org.organizationId, actor: 'key:bench', keyId: 'bench' };
    const input = (m: string) => ({ pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: m } });
    // each call gets its own request controller, as an HTTP request does (createContext)
    const variants: Record<string, (m: string) => Promise<void>> = {
      perCall: async (m) => {
        checkEcho(await plugins.invokeTool(caller, input(m), new AbortController().signal), m);
      },
      perRequest: async (m) => {
        const signal = new AbortController().signal;
        checkEcho(await plugins.invokeTool(caller, input(m), signal, { signalPerRequest: true }), m);
      },
    };
    const results: Record<string, number[]> = {};
    for (const call of Object.values(variants)) await runLoad(CALLS, IN_FLIGHT, (i) => call(`w${i}`));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, call] of Object.entries(variants)) {
        const cpu0 = process.cpuUsage();
        const r = await runLoad(CALLS, IN_FLIGHT, (i) => call(`m${i}`));
        const cpu = process.cpuUsage(cpu0);
        if (r.errors > 0) throw new Error(`${name}: ${r.errors} errors`);
        (results[name] ??= []).push(Math.round(((cpu.user + cpu.system) / CALLS) * 10) / 10);
      }
    }
    const report: Record<string, unknown> = {};
    for (const [name, us] of Object.entries(results)) report[name] = { usPerCall: us, median: median(us) };
    console.log(JSON.stringify(report));
  } finally {
    await h.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
