import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createHost, type Host } from '../../src/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PLUGIN = 'cached-echo';

async function trpc(url: string, proc: string, token: string, body: unknown) {
  const res = await fetch(`${url}/trpc/${proc}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return (await res.json()) as {
    result?: { data: Record<string, unknown> };
    error?: { data?: { hayCode?: string } };
  };
}

/** One sample's value from Prometheus text, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

// A copy of the test plugin whose echo tool is cached for 60 s and whose rate limit is 3 calls/minute.
function writePlugins(root: string): string {
  const pluginsDir = path.join(root, 'plugins');
  const src = path.join(ROOT, 'plugins', 'core', 'hay-plugin-test');
  const dir = path.join(pluginsDir, 'core', PLUGIN);
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(src, 'mcp'), path.join(dir, 'mcp'), { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(src, 'manifest.json'), 'utf8')) as {
    capabilities: { mcp: { tools: Record<string, unknown>[] } };
  };
  const tools = manifest.capabilities.mcp.tools.map((t) => ({ ...t, cache: { ttlSeconds: 60 } }));
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      ...manifest,
      id: PLUGIN,
      capabilities: { mcp: { ...manifest.capabilities.mcp, tools } },
      runtime: { rateLimitPerMinute: 3 },
    }),
  );
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  return pluginsDir;
}

describe('GET /metrics and plugins.metrics from real calls', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'hay-metrics-'));
  let host: Host;
  let key: string;

  beforeAll(async () => {
    const dataDir = path.join(root, 'data');
    mkdirSync(dataDir);
    cpSync(inject('pgliteTemplateDir'), path.join(dataDir, 'pglite'), { recursive: true });
    host = await createHost(
      loadConfig({}, [], {
        port: 0,
        dataDir,
        pluginsDir: writePlugins(root),
        adminToken: 'adm-metrics',
        sandbox: 'off',
        logLevel: 'silent',
      }),
      { logger: pino({ level: 'silent' }) },
    );
    await host.start();
    const org = await trpc(host.url, 'admin.createOrganization', host.adminToken, { name: 'metrics' });
    key = String(org.result?.data.apiKey);
    expect(
      (await trpc(host.url, 'plugins.enable', key, { pluginId: PLUGIN, configuration: {} })).result,
    ).toBeDefined();
  });

  afterAll(async () => {
    await host?.close();
    rmSync(root, { recursive: true, force: true });
    expect(descendantPids()).toEqual([]);
  });

  it('counts calls, cache hits, invalid calls and rate-limited calls', async () => {
    const call = (toolName: string) =>
      trpc(host.url, 'plugins.invokeTool', key, { pluginId: PLUGIN, toolName, arguments: { message: 'x' } });
    expect((await call('echo')).result?.data).toMatchObject({ content: [{ type: 'text', text: 'x' }] });
    expect((await call('echo')).result?.data).toMatchObject({ content: [{ type: 'text', text: 'x' }] });
    expect((await call('nope')).error?.data?.hayCode).toBe('TOOL_NOT_FOUND');
    expect((await call('echo')).error?.data?.hayCode).toBe('RATE_LIMITED');

    const res = await fetch(
      `${host.url}/trpc/plugins.metrics?input=${encodeURIComponent(JSON.stringify({ pluginId: PLUGIN }))}`,
      {
        headers: { authorization: `Bearer ${key}` },
      },
    );
    const m = (await res.json()) as { result?: { data: Record<string, unknown> } };
    expect(m.result?.data).toMatchObject({ totalInvocations: 4, errorRate: 0.5, activeInstances: 1 });
    expect(Number(m.result?.data.averageLatency)).toBeGreaterThan(0);
  });

  it('exposes every listed metric with data, to the admin token only', async () => {
    expect((await fetch(`${host.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${host.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(
      401,
    );
    const res = await fetch(`${host.url}/metrics`, {
      headers: { authorization: `Bearer ${host.adminToken}` },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const p = { plugin: PLUGIN };
    expect(sample(text, 'hay_tool_invocations_total', { ...p, tool: 'echo', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'hay_tool_invocations_total', { ...p, tool: 'echo', outcome: 'cached' })).toBe(1);
    expect(sample(text, 'hay_tool_invocations_total', { ...p, tool: 'unknown', outcome: 'invalid' })).toBe(1);
    expect(sample(text, 'hay_tool_invocations_total', { ...p, tool: 'echo', outcome: 'rate_limited' })).toBe(
      1,
    );
    expect(sample(text, 'hay_tool_invocation_duration_seconds_count', { ...p, tool: 'echo' })).toBe(3);
    expect(
      sample(text, 'hay_tool_invocation_duration_seconds_bucket', { ...p, tool: 'echo', le: '+Inf' }),
    ).toBe(3);
    expect(sample(text, 'hay_active_instances', p)).toBe(1);
    expect(sample(text, 'hay_active_instances_total')).toBe(1);
    expect(sample(text, 'hay_instance_startup_duration_seconds_count', p)).toBe(1);
    expect(sample(text, 'hay_instance_memory_bytes', p)).toBeGreaterThan(1_000_000);
    expect(sample(text, 'hay_instance_cpu_seconds', p)).toBeGreaterThan(0);
    expect(sample(text, 'hay_tool_cache_lookups_total', { ...p, result: 'hit' })).toBe(1);
    expect(sample(text, 'hay_tool_cache_lookups_total', { ...p, result: 'miss' })).toBe(1);
    expect(sample(text, 'hay_tool_cache_hit_ratio', p)).toBe(0.5);
    expect(sample(text, 'hay_rate_limited_total', { ...p, scope: 'plugin' })).toBe(1);
    // present as families even with no sample yet (no queue now; the plugin has no install step)
    for (const family of [
      'hay_queue_depth',
      'hay_plugin_prepare_duration_seconds',
      'hay_instance_stops_total',
      'hay_permission_denied_total',
    ])
      expect(text).toContain(`# TYPE ${family} `);
    // label values stay bounded: no argument values anywhere
    expect(text).not.toContain('message');
  });

  it('counts instance stops by cause', async () => {
    await trpc(host.url, 'plugins.disable', key, { pluginId: PLUGIN });
    await waitFor(
      () => host.services.instances.listInstances().every((i) => i.state !== 'running'),
      'instance stopped',
    );
    const text = await (
      await fetch(`${host.url}/metrics`, { headers: { authorization: `Bearer ${host.adminToken}` } })
    ).text();
    expect(
      sample(text, 'hay_instance_stops_total', { plugin: PLUGIN, cause: 'disabled' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'hay_active_instances_total')).toBe(0);
  });
});
