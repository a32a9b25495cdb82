// Cost growth: per-call latency, throughput and memory as organizations and enabled plugins per
// organization grow. Each scenario runs on a fresh in-process host.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { checkEcho, PLUGIN_ID, startBenchHost, unwrapTrpc, type BenchHost } from './host-fixture.js';
import { testPluginDir } from './mcp-baselines.js';
import { runLoad, summarize, timeSequential } from './stats.js';

export interface GrowthRow {
  orgs: number;
  pluginsPerOrg: number;
  p50Ms: number;
  p99Ms: number;
  throughput: number;
  errors: number;
  /** RSS of the bench process (host in-process) after the run. */
  rssMb: number;
  /** Plugin processes running at the end. */
  processes: number;
}

export interface GrowthOptions {
  orgCounts: readonly number[];
  pluginCounts: readonly number[];
  calls: number;
  loadCalls: number;
  concurrency: number;
}

export async function measureGrowth(o: GrowthOptions): Promise<GrowthRow[]> {
  const rows: GrowthRow[] = [];
  for (const orgs of o.orgCounts) rows.push(await scenario(o, orgs, 1));
  for (const plugins of o.pluginCounts) if (plugins > 1) rows.push(await scenario(o, 1, plugins));
  return rows;
}

/** `plugins` copies of the test plugin (own ids, one process per org each) in a temp plugins folder. */
function pluginCopies(count: number): { dir: string; ids: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hay-bench-growth-'));
  cpSync(path.join(packageRoot(), 'plugins', 'base'), path.join(dir, 'base'), { recursive: true });
  // the copies resolve the MCP SDK upward, like the repository's own plugins
  symlinkSync(path.join(packageRoot(), 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const manifest = JSON.parse(readFileSync(path.join(testPluginDir(), 'manifest.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  delete manifest.runtime;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `growth-plugin-${String(i).padStart(2, '0')}`;
    const pdir = path.join(dir, 'core', id);
    mkdirSync(pdir, { recursive: true });
    writeFileSync(path.join(pdir, 'manifest.json'), JSON.stringify({ ...manifest, id, name: id }));
    cpSync(path.join(testPluginDir(), 'mcp'), path.join(pdir, 'mcp'), { recursive: true });
    ids.push(id);
  }
  return { dir, ids };
}

async function scenario(o: GrowthOptions, orgs: number, plugins: number): Promise<GrowthRow> {
  const copies = plugins > 1 ? pluginCopies(plugins) : undefined;
  const ids = copies?.ids ?? [PLUGIN_ID];
  let h: BenchHost | undefined;
  try {
    h = await startBenchHost(copies ? { pluginsDir: copies.dir } : {});
    const bench = h;
    const keys: string[] = [];
    for (let i = 0; i < orgs; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, orgs - i) }, async (_, j) => {
          const org = (await bench.trpc('admin.createOrganization', bench.host.adminToken, {
            name: `growth-${i + j}`,
          })) as { apiKey: string };
          for (const id of ids)
            await bench.trpc('plugins.enable', org.apiKey, { pluginId: id, configuration: {} });
          return org.apiKey;
        }),
      );
      keys.push(...batch);
    }
    const pairs = keys.flatMap((key) => ids.map((id) => ({ key, id })));
    const call = async (i: number) => {
      const pair = pairs[i % pairs.length];
      if (!pair) throw new Error('no pair');
      const input = { pluginId: pair.id, toolName: 'echo', arguments: { message: `g${i}` } };
      const res = await bench.http.post('/trpc/plugins.invokeTool', input, {
        authorization: `Bearer ${pair.key}`,
      });
      checkEcho(unwrapTrpc(res.body, 'plugins.invokeTool'), `g${i}`);
    };
    // every pair once (starts its instance), then the timed calls
    for (let i = 0; i < pairs.length; i += o.concurrency)
      await Promise.all(
        Array.from({ length: Math.min(o.concurrency, pairs.length - i) }, (_, j) => call(i + j)),
      );
    const seq = summarize(await timeSequential(o.calls, 0, call));
    const load = await runLoad(o.loadCalls, o.concurrency, call);
    const processes = bench.host.services.instances
      .listInstances()
      .filter((i) => i.state === 'running').length;
    return {
      orgs,
      pluginsPerOrg: plugins,
      p50Ms: seq.p50,
      p99Ms: seq.p99,
      throughput: load.throughput,
      errors: load.errors,
      rssMb: process.memoryUsage().rss / 1024 / 1024,
      processes,
    };
  } finally {
    await h?.close();
    if (copies) rmSync(copies.dir, { recursive: true, force: true });
  }
}
