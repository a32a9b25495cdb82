// The tenant burst (K organizations enable the test plugin and make their first call at once) and the
// machine's floor for it (parallel spawn + initialize + call with the bare SDK).
import { type BenchHost, checkEcho, PLUGIN_ID, unwrapTrpc } from './host-fixture.js';
import { JsonHttpClient } from './http-client.js';
import { connectDirect } from './mcp-baselines.js';
import { median } from './stats.js';

export interface FloorResult {
  spawns: number;
  concurrency: number;
  seconds: number;
  /** spawn + initialize + call + close per second. */
  perSecond: number;
}

/** `spawns` bare-SDK spawn + initialize + echo call + close, `concurrency` at a time. */
export async function measureFloor(spawns: number, concurrency: number): Promise<FloorResult> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (next++ >= spawns) return;
      const client = await connectDirect();
      try {
        checkEcho(await client.callTool({ name: 'echo', arguments: { message: 'floor' } }), 'floor');
      } finally {
        await client.close();
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, spawns) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { spawns, concurrency, seconds, perSecond: spawns / seconds };
}

export interface BurstResult {
  orgs: number;
  errors: number;
  firstError: string | undefined;
  /** From the first request to the last answer (enable + first call of every org). */
  totalMs: number;
  /** Per org: enable + first call. */
  p50Ms: number;
  maxMs: number;
  /** Plugin processes the host started for the burst. */
  processes: number;
}

/**
 * Creates `orgs` organizations (untimed), then all at once: each enables the test plugin and calls echo,
 * over at most `sockets` connections.
 * Counts errors (any non-success), the wall time, and how many instances the host started.
 */
export async function measureBurst(h: BenchHost, orgs: number, sockets: number): Promise<BurstResult> {
  const keys: string[] = [];
  for (let i = 0; i < orgs; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, orgs - i) }, async (_, j) => {
        const org = (await h.trpc('admin.createOrganization', h.host.adminToken, {
          name: `burst-${i + j}`,
        })) as { apiKey: string };
        return org.apiKey;
      }),
    );
    keys.push(...batch);
  }
  let starts = 0;
  const off = h.host.services.instances.on('state', (e) => {
    if (e.pluginId === PLUGIN_ID && e.to === 'starting') starts++;
  });
  // every org's requests are issued at once; `sockets` bounds the connections they share (an ingress's
  // upstream pool), the rest wait in the client's queue instead of in the host's accept queue
  const http = new JsonHttpClient(h.host.url, {}, Math.max(1, sockets));
  let errors = 0;
  let firstError: string | undefined;
  const perOrg: number[] = [];
  const t0 = performance.now();
  try {
    await Promise.all(
      keys.map(async (key, i) => {
        const started = performance.now();
        try {
          const auth = { authorization: `Bearer ${key}` };
          unwrapTrpc(
            (
              await http.post(
                '/trpc/plugins.enable',
                { pluginId: PLUGIN_ID, configuration: {} },
                auth,
                120_000,
              )
            ).body,
            'plugins.enable',
          );
          const input = { pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: `b${i}` } };
          const res = await http.post('/trpc/plugins.invokeTool', input, auth, 120_000);
          checkEcho(unwrapTrpc(res.body, 'plugins.invokeTool'), `b${i}`);
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
        perOrg.push(performance.now() - started);
      }),
    );
  } finally {
    off();
    http.close();
  }
  const totalMs = performance.now() - t0;
  return {
    orgs,
    errors,
    firstError,
    totalMs,
    p50Ms: median(perOrg),
    maxMs: Math.max(0, ...perOrg),
    processes: starts,
  };
}
