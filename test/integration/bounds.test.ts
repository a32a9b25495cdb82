import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Issue 9, attacks on the host's budgets (metrics labels, rate limits before lookups, regex time),
 * each run against a real host over HTTP.
 */

async function post(url: string, proc: string, token: string, body: unknown, batch = false) {
  const res = await fetch(`${url}/trpc/${proc}${batch ? '?batch=1' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

async function metricsText(t: TestHost): Promise<string> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.adminToken}` } });
  expect(res.status).toBe(200);
  return res.text();
}

const rand = () => randomBytes(6).toString('hex');

describe('metrics cardinality: caller-supplied names never become labels', () => {
  let t: TestHost;
  let key: string;

  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: ['hay-plugin-test'],
      // generous limits: this attack is about labels, not rate limits
      config: { rateLimitBurst: 100_000, rateLimitPerMinute: 1_000_000, apiKeyRateLimitPerMinute: 1_000_000 },
    });
    const org = await t.createOrganization('labels');
    key = org.apiKey;
    await org.hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    await org.hay.plugins.invokeTool.mutate({
      pluginId: 'hay-plugin-test',
      toolName: 'echo',
      arguments: { message: 'warm' },
    });
  });
  afterAll(async () => {
    await t?.close();
    expect(descendantPids()).toEqual([]);
  });

  it('3,000 calls with random plugin ids and tool names leave /metrics small', async () => {
    const before = await metricsText(t);
    const names: string[] = [];
    for (let r = 0; r < 30; r++) {
      const calls = Array.from({ length: 100 }, (_, i) => {
        const tool = `tool-${rand()}`;
        const pluginId = i % 2 === 0 ? `plugin-${rand()}` : 'hay-plugin-test';
        names.push(tool);
        if (pluginId !== 'hay-plugin-test') names.push(pluginId);
        return { pluginId, toolName: tool, arguments: {} };
      });
      const res = await post(t.url, 'plugins.invokeToolsBatch', key, { calls });
      expect(res.status).toBe(200);
      const results = (res.body as { result: { data: { ok: boolean; error?: { code: string } }[] } }).result
        .data;
      expect(results.map((x) => x.error?.code)).toEqual(
        calls.map((c) => (c.pluginId === 'hay-plugin-test' ? 'TOOL_NOT_FOUND' : 'PLUGIN_NOT_FOUND')),
      );
    }
    const after = await metricsText(t);
    for (const name of names.slice(0, 200)) expect(after).not.toContain(name);
    // the growth is the fixed `unknown` series (and the counts in existing ones), not one per name
    const growth = after.length - before.length;
    console.log(`/metrics: ${before.length} bytes before, ${after.length} bytes after 3,000 calls`);
    expect(growth).toBeLessThan(10_000);
    expect(after).toMatch(
      /hay_tool_invocations_total\{plugin="unknown",tool="unknown",outcome="invalid"\} 1500/,
    );
    expect(after).toMatch(
      /hay_tool_invocations_total\{plugin="hay-plugin-test",tool="unknown",outcome="invalid"\} 1500/,
    );
  });
});

describe('the API key rate limit runs before any plugin lookup', () => {
  let t: TestHost;

  beforeAll(async () => {
    t = await startTestHost({ corePlugins: [], config: { rateLimitBurst: 5, apiKeyRateLimitPerMinute: 1 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('unknown plugin ids are refused with 429 once the key bucket is empty', async () => {
    const org = await t.createOrganization('limited');
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await post(t.url, 'plugins.invokeTool', org.apiKey, {
        pluginId: `nope-${i}`,
        toolName: 'x',
        arguments: {},
      });
      codes.push((res.body as { error: { data: { hayCode: string } } }).error.data.hayCode);
    }
    expect(codes).toEqual([...Array(5).fill('PLUGIN_NOT_FOUND'), ...Array(3).fill('RATE_LIMITED')]);
    const text = await metricsText(t);
    expect(text).toContain('hay_rate_limited_total{plugin="unknown",scope="api_key"} 3');
    expect(text).not.toContain('nope-');
  });
});

export { toolkitPlugin, waitFor };
