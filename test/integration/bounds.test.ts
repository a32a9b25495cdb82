import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids } from '../helpers/processes.js';

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

describe('audit flood: failed authentications are aggregated per source and window', () => {
  let t: TestHost;

  beforeAll(async () => {
    t = await startTestHost({ corePlugins: [] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('5 requests of a 100-call unauthenticated tRPC batch write one row that counts 500', async () => {
    const forged = `hay_forged12${'x'.repeat(31)}`;
    const procs = Array(100).fill('plugins.invokeTool').join(',');
    const body = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [String(i), { pluginId: 'p', toolName: 't', arguments: {} }]),
    );
    for (let r = 0; r < 5; r++) {
      const res = await fetch(`${t.url}/trpc/${procs}?batch=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${forged}` },
        body: JSON.stringify(body),
      });
      const out = (await res.json()) as { error: { data: { code: string } } }[];
      expect(out).toHaveLength(100);
      expect(out.every((x) => x.error.data.code === 'UNAUTHORIZED')).toBe(true);
    }
    const { entries } = await t.admin.admin.auditLog.query({ action: 'auth.failed', limit: 500 });
    expect(entries).toHaveLength(1);
    const row = entries[0];
    expect(row).toMatchObject({ actor: 'ip:127.0.0.1', outcome: 'denied', organizationId: null });
    expect(row?.details).toMatchObject({
      count: 500,
      keyPrefix: 'hay_forged12',
      reason: 'invalid or revoked API key',
    });
    const d = row?.details as { firstAt: string; lastAt: string };
    expect(Date.parse(d.lastAt)).toBeGreaterThanOrEqual(Date.parse(d.firstAt));
    expect(JSON.stringify(entries)).not.toContain(forged);
  });
});

describe('the API key rate limit runs before any plugin lookup', () => {
  let t: TestHost;

  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      plugins: { 'core/greedy': toolkitPlugin('greedy', { runtime: { limits: { memoryMb: 1_000_000 } } }) },
      config: { rateLimitBurst: 5, apiKeyRateLimitPerMinute: 1 },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a manifest above an operator ceiling is registered invalid, naming the ceiling', async () => {
    const org = await t.createOrganization('greedy');
    const list = await org.hay.plugins.list.query();
    const greedy = list.find((p) => p.id === 'greedy');
    expect(greedy?.status).toBe('invalid');
    expect(greedy?.error).toContain(
      "/runtime/limits/memoryMb is 1000000, above this host's ceiling of 4096 (HAY_MANIFEST_MAX_MEMORY_MB)",
    );
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

describe('arguments nested deeper than JSON.stringify can go', () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost({ corePlugins: [] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('are a validation error on /v1/invoke and /trpc, not an internal one', async () => {
    // found 2026-12-02: the size check's JSON.stringify threw RangeError: /v1/invoke answered 500 INTERNAL,
    // tRPC "Maximum call stack size exceeded"
    const org = await t.createOrganization('deep');
    const depth = 100_000;
    const body = `{"pluginId":"kit","toolName":"echo","arguments":{"n":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const send = (path: string) =>
      fetch(`${t.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${org.apiKey}` },
        body,
      });
    const invoke = await send('/v1/invoke');
    expect(invoke.status).toBe(400);
    expect(await invoke.json()).toEqual({
      error: { code: 'INPUT_INVALID', message: 'arguments: arguments nest too deeply to be serialized' },
    });
    const trpc = await send('/trpc/plugins.invokeTool');
    expect(trpc.status).toBe(400);
    expect(JSON.stringify(await trpc.json())).toContain('arguments nest too deeply to be serialized');
  });

  it('so is an event payload nested that deep (events.publish)', async () => {
    const org = await t.createOrganization('deep-event');
    const depth = 100_000;
    const res = await fetch(`${t.url}/trpc/events.publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${org.apiKey}` },
      body: `{"type":"deep.test","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('payload nests too deeply to be serialized');
  });
});

const REGEX_SERVER = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
const server = new McpServer({ name: 'regex', version: '1.0.0' });
server.registerTool('match', { inputSchema: { s: z.string().regex(/^(a+)+$/) } }, async ({ s }) => ({
  content: [{ type: 'text', text: s }],
}));
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => process.exit(0));
`;

describe("a plugin's catastrophic pattern does not delay another org's call", () => {
  let t: TestHost;

  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: ['hay-plugin-test'],
      plugins: {
        'core/regex': toolkitPlugin(
          'regex',
          {
            capabilities: {
              mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node regex.mjs' },
            },
          },
          { 'regex.mjs': REGEX_SERVER },
        ),
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    expect(descendantPids()).toEqual([]);
  });

  it('^(a+)+$ against 40 characters: both calls complete and the attacker gets a plain validation error', async () => {
    const attacker = await t.createOrganization('attacker');
    const victim = await t.createOrganization('victim');
    await attacker.hay.plugins.enable.mutate({ pluginId: 'regex', configuration: {} });
    await victim.hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    // both instances running, so the calls below are only validation and a round trip
    await attacker.hay.plugins.listTools.query({ pluginId: 'regex' });
    await victim.hay.plugins.invokeTool.mutate({
      pluginId: 'hay-plugin-test',
      toolName: 'echo',
      arguments: {},
    });

    const evil = post(t.url, 'plugins.invokeTool', attacker.apiKey, {
      pluginId: 'regex',
      toolName: 'match',
      arguments: { s: `${'a'.repeat(40)}!` },
    });
    // issued after the attacker's call; on a backtracking engine it would wait for hours behind it
    const fair = victim.hay.plugins.invokeTool.mutate({
      pluginId: 'hay-plugin-test',
      toolName: 'echo',
      arguments: { message: 'still here' },
    });
    const [e, f] = await Promise.all([evil, fair]);
    expect(f.content).toEqual([{ type: 'text', text: 'still here' }]);
    expect(e.status).toBe(400);
    expect((e.body as { error: { data: { hayCode: string } } }).error.data.hayCode).toBe('ARGUMENTS_INVALID');
    // the matching pattern still passes validation and reaches the server
    const ok = await attacker.hay.plugins.invokeTool.mutate({
      pluginId: 'regex',
      toolName: 'match',
      arguments: { s: 'a'.repeat(40) },
    });
    expect(ok.content).toEqual([{ type: 'text', text: 'a'.repeat(40) }]);
  });
});

describe('slow request bodies are cut at the request timeout', () => {
  let t: TestHost;

  beforeAll(async () => {
    t = await startTestHost({ corePlugins: [], config: { httpRequestTimeoutMs: 400 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a body that never finishes gets 408 and the connection is closed', async () => {
    const { port } = new URL(t.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      'POST /v1/invoke HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"plu',
    );
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });
});

const BIG_SERVER = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
const server = new McpServer({ name: 'big', version: '1.0.0' });
server.registerTool('big', { inputSchema: { n: z.number() } }, async ({ n }) => ({
  content: [{ type: 'text', text: 'x'.repeat(n) }],
}));
const many = Number(process.env.MANY_TOOLS ?? '0');
for (let i = 0; i < many; i++) server.registerTool('t' + i, { inputSchema: {} }, async () => ({ content: [] }));
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => process.exit(0));
`;

describe('caps on what a plugin answers: result size, tools/list count', () => {
  let t: TestHost;
  const plugin = (id: string, many: number) =>
    toolkitPlugin(
      id,
      {
        capabilities: {
          mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node big.mjs' },
        },
        configSchema: { many: { type: 'string', env: 'MANY_TOOLS', default: String(many) } },
      },
      { 'big.mjs': BIG_SERVER },
    );

  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      plugins: { 'core/big': plugin('big', 0), 'core/many': plugin('many', 50) },
      config: { maxToolResultBytes: 100_000, maxTools: 20 },
    });
  });
  afterAll(async () => {
    await t?.close();
    expect(descendantPids()).toEqual([]);
  });

  it('a result over HAY_MAX_TOOL_RESULT_BYTES is refused with an error naming the limit', async () => {
    const org = await t.createOrganization('big');
    await org.hay.plugins.enable.mutate({ pluginId: 'big', configuration: {} });
    const small = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'big',
      toolName: 'big',
      arguments: { n: 10 },
    });
    expect(small.content).toEqual([{ type: 'text', text: 'x'.repeat(10) }]);
    const res = await post(t.url, 'plugins.invokeTool', org.apiKey, {
      pluginId: 'big',
      toolName: 'big',
      arguments: { n: 200_000 },
    });
    expect(res.status).toBe(412);
    expect((res.body as { error: { message: string } }).error.message).toMatch(
      /^Plugin big returned a result of about \d+ bytes for tool "big"; the limit is 100000 \(HAY_MAX_TOOL_RESULT_BYTES\)$/,
    );
  });

  it('a server listing more than HAY_MAX_TOOLS tools is refused naming the limit', async () => {
    const org = await t.createOrganization('many');
    await org.hay.plugins.enable.mutate({ pluginId: 'many', configuration: {} });
    const res = await fetch(
      `${t.url}/trpc/plugins.listTools?input=${encodeURIComponent(JSON.stringify({ pluginId: 'many' }))}`,
      { headers: { authorization: `Bearer ${org.apiKey}` } },
    );
    const body = (await res.json()) as { error: { message: string } };
    expect(res.status).toBe(412);
    expect(body.error.message).toBe('Plugin many lists more than 20 tools (limit HAY_MAX_TOOLS)');
  });
});
