import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A hostile plugin answering tools/call with structuredContent nested 100 000 deep (well under the 10 MB
 * line bound): JSON.parse takes it, JSON.stringify throws RangeError. The host must fail that call with an
 * error and go on serving; the plugin writes raw lines since its own SDK could not serialize the result.
 */
const DEEP_SERVER = `
import readline from 'node:readline';
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  if (m.method === 'initialize')
    return out({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'deep', version: '1.0.0' } } });
  if (m.method === 'tools/list')
    return out({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'deep', inputSchema: { type: 'object' } }, { name: 'flat', inputSchema: { type: 'object' } }] } });
  if (m.method === 'tools/call' && m.params.name === 'deep') {
    const d = 100000;
    process.stdout.write('{"jsonrpc":"2.0","id":' + JSON.stringify(m.id) + ',"result":{"content":[{"type":"text","text":"x"}],"structuredContent":{"a":' + '{"a":'.repeat(d) + '1' + '}'.repeat(d) + '}}}\\n');
    return;
  }
  if (m.method === 'tools/call') return out({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'flat' }] } });
  if (m.method === 'ping') return out({ jsonrpc: '2.0', id: m.id, result: {} });
  out({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no such method' } });
});
rl.on('close', () => process.exit(0));
`;

let t: TestHost;
let org: Awaited<ReturnType<TestHost['createOrganization']>>;

beforeAll(async () => {
  t = await startTestHost({
    corePlugins: [],
    plugins: {
      'core/deep': toolkitPlugin(
        'deep',
        {
          capabilities: {
            mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node server.mjs' },
          },
        },
        { 'server.mjs': DEEP_SERVER },
      ),
    },
    config: { callTimeoutMs: 10_000, startTimeoutMs: 10_000 },
  });
  org = await t.createOrganization('deep');
  await org.hay.plugins.enable.mutate({ pluginId: 'deep', configuration: {} });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

describe('a result nested deeper than JSON.stringify can go', () => {
  it('fails that call naming the depth limit, and the host keeps serving', async () => {
    const err = await org.hay.plugins.invokeTool
      .mutate({ pluginId: 'deep', toolName: 'deep', arguments: {} })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(err).toBeDefined();
    // before: the result passed the host and the reply failed to serialize ("Unable to transform response")
    expect(err?.message ?? '').toMatch(/nested more than 512 levels deep/);
    const flat = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'deep',
      toolName: 'flat',
      arguments: {},
    });
    expect(flat.content).toEqual([{ type: 'text', text: 'flat' }]);
  });
});
