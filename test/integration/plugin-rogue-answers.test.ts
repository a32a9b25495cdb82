import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { legacyMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A hostile plugin getting its JSON-RPC answers wrong on purpose: answers for ids never asked (one before
 * any request), the same answer twice, an `error` whose `message` is no string, a `result` that is no
 * object, and an error carrying a large `data` with stack frames and host-looking paths. The host must
 * not crash or hang: each bad answer fails its call at once (not at the call timeout) with an error
 * saying what was wrong, nothing of `data` reaches the caller, and the plugin keeps serving.
 * Both connection kinds: the SDK 1.x client (McpPluginConnection) and, for a plugin that speaks only
 * MCP 2026-07-28, the SDK 2.x client (ModernPluginConnection); both read through ProcessStdioTransport.
 */
const LEGACY_ROGUE = `
import readline from 'node:readline';
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
// an answer before any request
out({ jsonrpc: '2.0', id: 7, result: {} });
const rl = readline.createInterface({ input: process.stdin });
const tools = ['bad-error', 'bad-result', 'stray', 'big-data', 'huge-message', 'fine', 'fine'].map((name) => ({ name, inputSchema: { type: 'object' } }));
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  if (m.method === 'initialize')
    return out({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'rogue', version: '1.0.0' } } });
  if (m.method === 'tools/list') return out({ jsonrpc: '2.0', id: m.id, result: { tools } });
  if (m.method === 'ping') return out({ jsonrpc: '2.0', id: m.id, result: {} });
  if (m.method !== 'tools/call') return out({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no such method' } });
  const ok = (text) => ({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text }] } });
  switch (m.params.name) {
    case 'bad-error':
      return out({ jsonrpc: '2.0', id: m.id, error: { code: -32000, message: { not: 'a string' } } });
    case 'bad-result':
      return out({ jsonrpc: '2.0', id: m.id, result: 'not an object' });
    case 'stray':
      out({ jsonrpc: '2.0', id: 987654, result: {} });
      out({ jsonrpc: '2.0', id: 'never-asked', error: { code: 1, message: 'x' } });
      out(ok('first'));
      return out(ok('second'));
    case 'big-data':
      return out({ jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'boom', data: { stack: 'Error: boom\\n    at /srv/hay/secret-path/x.js:1:1\\n'.repeat(50000) } } });
    case 'huge-message':
      return out({ jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'huge:' + 'm'.repeat(2000000) + ':END' } });
    default:
      return out(ok('fine'));
  }
});
rl.on('close', () => process.exit(0));
`;

/** The 2026-07-28-only SDK 2.x server, with its tool results of text BAD rewritten into a bad answer. */
const MODERN_ROGUE = `
import { Writable } from 'node:stream';
import { McpServer } from '@modelcontextprotocol/server';
import { serveStdio, StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { z } from 'zod';

const rewrite = (line) => {
  try {
    const m = JSON.parse(line);
    if (m.result?.content?.[0]?.text === 'BAD') return JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 42 } });
    if (m.result?.content?.[0]?.text === 'HUGE') return JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'huge:' + 'm'.repeat(2000000) + ':END' } });
  } catch {}
  return line;
};
let pending = '';
const stdout = new Writable({
  write(chunk, _enc, cb) {
    pending += chunk.toString('utf8');
    let i;
    while ((i = pending.indexOf('\\n')) >= 0) {
      process.stdout.write(rewrite(pending.slice(0, i)) + '\\n');
      pending = pending.slice(i + 1);
    }
    cb();
  },
});
const build = () => {
  const server = new McpServer({ name: 'modern-rogue', version: '1.0.0' });
  server.registerTool('bad-error', { inputSchema: z.object({}) }, () => ({ content: [{ type: 'text', text: 'BAD' }] }));
  server.registerTool('huge-message', { inputSchema: z.object({}) }, () => ({ content: [{ type: 'text', text: 'HUGE' }] }));
  server.registerTool('fine', { inputSchema: z.object({}) }, () => ({ content: [{ type: 'text', text: 'fine' }] }));
  return server;
};
serveStdio(build, { legacy: 'reject', transport: new StdioServerTransport(process.stdin, stdout) });
`;

/** Lists a tool whose inputSchema nests 100 000 deep (JSON.parse takes it; JSON.stringify throws). */
const DEEP_SCHEMA = `
import readline from 'node:readline';
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  if (m.method === 'initialize')
    return out({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'deep-schema', version: '1.0.0' } } });
  if (m.method === 'tools/list') {
    const d = 100000;
    const deep = '{"a":'.repeat(d) + '1' + '}'.repeat(d);
    process.stdout.write('{"jsonrpc":"2.0","id":' + JSON.stringify(m.id) + ',"result":{"tools":[{"name":"flat","inputSchema":{"type":"object"}},{"name":"abyss","inputSchema":{"type":"object","properties":{"a":' + deep + '}}}]}}\\n');
    return;
  }
  if (m.method === 'ping') return out({ jsonrpc: '2.0', id: m.id, result: {} });
  if (m.method === 'tools/call') return out({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'flat' }] } });
  out({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no such method' } });
});
rl.on('close', () => process.exit(0));
`;

const CALL_TIMEOUT_MS = 15_000;

let t: TestHost;
let org: Awaited<ReturnType<TestHost['createOrganization']>>;

beforeAll(async () => {
  t = await startTestHost({
    corePlugins: [],
    plugins: {
      'core/rogue': toolkitPlugin('rogue', {}, { 'server.mjs': LEGACY_ROGUE }),
      'core/modern-rogue': toolkitPlugin('modern-rogue', {}, { 'server.mjs': MODERN_ROGUE }),
      'core/deep-schema': toolkitPlugin('deep-schema', {}, { 'server.mjs': DEEP_SCHEMA }),
    },
    config: { callTimeoutMs: CALL_TIMEOUT_MS, startTimeoutMs: 10_000 },
  });
  org = await t.createOrganization('rogue');
  await org.hay.plugins.enable.mutate({ pluginId: 'rogue', configuration: {} });
  await org.hay.plugins.enable.mutate({ pluginId: 'modern-rogue', configuration: {} });
  await org.hay.plugins.enable.mutate({ pluginId: 'deep-schema', configuration: {} });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

async function call(pluginId: string, toolName: string) {
  const started = Date.now();
  const outcome = await org.hay.plugins.invokeTool.mutate({ pluginId, toolName, arguments: {} }).then(
    (result) => ({ result, error: undefined }),
    (e: unknown) => ({
      result: undefined,
      error: e as Error & { data?: { code?: string; hayCode?: string } },
    }),
  );
  return { ...outcome, ms: Date.now() - started };
}

const textOf = (r: { content?: unknown } | undefined) =>
  ((r?.content as { text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('');

describe.each([
  ['SDK 1.x connection', 'rogue', ['bad-error', 'bad-result']],
  ['2026-07-28 connection', 'modern-rogue', ['bad-error']],
] as const)('%s: invalid answers', (_kind, pluginId, tools) => {
  it.each(tools)(
    '%s fails at once, saying the answer was invalid; the plugin goes on serving',
    async (tool) => {
      const { error, ms } = await call(pluginId, tool);
      // before: the answer was dropped as an unreadable line and the call waited for its timeout
      expect(error?.message ?? '').toMatch(/invalid JSON-RPC response/);
      expect(ms).toBeLessThan(CALL_TIMEOUT_MS / 2);
      expect(textOf((await call(pluginId, 'fine')).result)).toBe('fine');
    },
  );
});

describe.each([
  ['SDK 1.x connection', 'rogue'],
  ['2026-07-28 connection', 'modern-rogue'],
] as const)('%s: an error message of 2 MB', (_kind, pluginId) => {
  it('reaches the caller cut to its first 2,000 characters, saying how much was cut', async () => {
    const { error } = await call(pluginId, 'huge-message');
    const message = error?.message ?? '';
    // before: all 2,000,010 characters were carried into the error, the audit row and the logs
    expect(message).toMatch(/huge:m+… \(\d+ more characters cut\)$/);
    expect(message).not.toContain(':END');
    expect(message.length).toBeLessThan(2_200);
    expect(textOf((await call(pluginId, 'fine')).result)).toBe('fine');
  });
});

describe('SDK 1.x connection: stray and duplicate answers', () => {
  it('answers for ids never asked and a second answer for one id change nothing', async () => {
    const stray = await call('rogue', 'stray');
    expect(stray.error).toBeUndefined();
    expect(textOf(stray.result)).toBe('first');
    const again = await call('rogue', 'fine');
    expect(textOf(again.result)).toBe('fine');
  });

  it('an error with a large data carrying stack frames and paths reaches the caller as its message only', async () => {
    const { error } = await call('rogue', 'big-data');
    // its code is -32000, the code SDK 1.x also gives a closed connection: before, the call was reported
    // as "Plugin rogue stopped responding" after waiting 3 s for an exit that never came
    expect(error?.message ?? '').toMatch(/boom/);
    expect(error?.data?.hayCode).toBe('INSTANCE_FAILED');
    expect(error?.message ?? '').not.toContain('secret-path');
    expect(JSON.stringify(error)).not.toContain('secret-path');
    expect(textOf((await call('rogue', 'fine')).result)).toBe('fine');
  });
});

describe('a tools/list whose inputSchema nests deeper than JSON.stringify can go', () => {
  it('is refused naming the tool and the depth; the organization’s /mcp listing leaves the plugin out', async () => {
    const listed = await org.hay.plugins.listTools.query({ pluginId: 'deep-schema' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(listed?.message ?? '').toMatch(/"abyss" nested more than 512 levels deep/);
    const called = await call('deep-schema', 'flat');
    expect(called.error?.message ?? '').toMatch(/"abyss" nested more than 512 levels deep/);
    const client = await legacyMcpClient(t.url, org.apiKey);
    try {
      const names = (await client.listTools()).tools.map((x) => x.name);
      // rogue lists "fine" twice: one tool, under its plain name
      expect(names.filter((n) => n.startsWith('rogue__fine'))).toEqual(['rogue__fine']);
      expect(names.some((n) => n.startsWith('deep-schema__'))).toBe(false);
    } finally {
      await client.close();
    }
  });
});
