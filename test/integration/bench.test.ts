import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { descendantPids } from '../helpers/processes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

// Benchmarks are not tests: this only checks that `bench` and `loadtest` run to completion at a tiny
// size and print what they promise. No timing is asserted.
describe('bench and loadtest (tiny)', () => {
  afterAll(() => expect(descendantPids()).toEqual([]));

  it('bench prints a table and, last, one JSON line with the ratio keys', { timeout: 180_000 }, async () => {
    const { stdout } = await run(TSX, ['bench/bench.ts'], {
      cwd: ROOT,
      timeout: 170_000,
      env: {
        ...process.env,
        BENCH_CALLS: '20',
        BENCH_WARMUP: '5',
        BENCH_LOAD_CALLS: '200',
        BENCH_COLD_RUNS: '1',
        BENCH_WARM_FIRST_RUNS: '2',
        BENCH_DISCOVERY_PLUGINS: '10',
        BENCH_SANDBOX: '0',
        BENCH_BURST_ORGS: '5',
        BENCH_FLOOR_SPAWNS: '2',
        // the host-process run needs dist/ (bin/hay-plugins.js); this test runs the sources with tsx
        BENCH_HOST_PROCESS: '0',
        BENCH_GROWTH_ORGS: '2',
        BENCH_GROWTH_PLUGINS: '2',
        BENCH_GROWTH_CALLS: '5',
        BENCH_GROWTH_LOAD_CALLS: '20',
      },
    });
    const lines = stdout.trim().split('\n');
    expect(stdout).toContain('(a) direct SDK client');
    expect(stdout).toContain('(h) discovery of 10 plugin folders');
    const result = JSON.parse(lines[lines.length - 1] ?? '') as Record<string, unknown>;
    for (const key of [
      'overheadRatio',
      'throughputRatio',
      'coldStartRatio',
      'warmFirstCallRatio',
      'warmFirstControlMs',
      'warmFirstOverC1',
      'discovery1000Ms',
      'errors',
      'overheadRatioTrpc',
      'throughputRatioTrpc',
      'burstOrgs',
      'burstErrors',
      'burstRatio',
      'hostRssIdleMb',
      'instanceRssMb',
    ])
      expect(typeof result[key], key).toBe('number');
    expect(result.errors).toBe(0);
    expect(result).toMatchObject({ burstOrgs: 5, burstErrors: 0 });
    expect(stdout).toContain('(j) burst: 5 orgs');
    expect(stdout).toContain('(g0) the same position');
    expect(result.growth).toMatchObject([
      { orgs: 2, pluginsPerOrg: 1, errors: 0 },
      { orgs: 1, pluginsPerOrg: 2, errors: 0, processes: 2 },
    ]);
    expect(result.discoveryPlugins).toBe(10);
  });

  it('loadtest prints throughput, percentiles and the error count', { timeout: 120_000 }, async () => {
    const { stdout } = await run(TSX, ['bench/loadtest.ts'], {
      cwd: ROOT,
      timeout: 110_000,
      env: { ...process.env, LOADTEST_TOTAL: '150', LOADTEST_CONCURRENCY: '100' },
    });
    expect(stdout).toMatch(/throughput\s+\d+ calls\/s/);
    expect(stdout).toMatch(/p50 [\d.]+ ms {2}p95 [\d.]+ ms {2}p99 [\d.]+ ms/);
    const lines = stdout.trim().split('\n');
    const result = JSON.parse(lines[lines.length - 1] ?? '') as Record<string, unknown>;
    expect(result).toMatchObject({ total: 150, concurrency: 100, errors: 0 });
  });
});
