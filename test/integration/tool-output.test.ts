import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../src/api/router.js';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { modernMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A plugin's result is checked against the tool's own outputSchema (the MCP client's duty since
 * 2025-06-18): a successful result without structuredContent, or with structuredContent that breaks the
 * schema, fails the call with TOOL_OUTPUT_INVALID instead of reaching the caller (or the result cache).
 * The plugin is a low-level SDK Server, which, unlike McpServer, does not check its own output.
 */
const SHAPED_SERVER = `
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const server = new Server({ name: 'shaped', version: '1.0.0' }, { capabilities: { tools: {} } });
let calls = 0;
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    {
      name: 'shaped',
      inputSchema: { type: 'object', properties: { mode: { type: 'string' } }, required: ['mode'] },
      outputSchema: {
        type: 'object',
        properties: { n: { type: 'integer' }, calls: { type: 'integer' } },
        required: ['n'],
      },
    },
    { name: 'free', inputSchema: { type: 'object' } },
  ],
}));
server.setRequestHandler(CallToolRequestSchema, async (req) => {
  calls++;
  const text = [{ type: 'text', text: 'x' }];
  if (req.params.name === 'free') return { content: text, structuredContent: { anything: [1, 'two'] } };
  const mode = req.params.arguments?.mode;
  if (mode === 'ok') return { content: text, structuredContent: { n: 1, calls } };
  if (mode === 'wrong') return { content: text, structuredContent: { n: 'one' } };
  if (mode === 'missing') return { content: text };
  return { content: [{ type: 'text', text: 'it failed' }], isError: true };
});
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => process.exit(0));
`;

let t: TestHost;
let org: Awaited<ReturnType<TestHost['createOrganization']>>;

beforeAll(async () => {
  t = await startTestHost({
    corePlugins: [],
    plugins: {
      'core/shaped': toolkitPlugin(
        'shaped',
        {
          capabilities: {
            mcp: {
              connection: { type: 'local' },
              transport: 'stdio',
              startCommand: 'node server.mjs',
              // a result cache, so a test can show a refused result is not cached
              tools: [{ name: 'shaped', cache: { ttlSeconds: 60 } }],
            },
          },
        },
        { 'server.mjs': SHAPED_SERVER },
      ),
    },
    config: { callTimeoutMs: 5_000, startTimeoutMs: 5_000 },
  });
  org = await t.createOrganization('output');
  await org.hay.plugins.enable.mutate({ pluginId: 'shaped', configuration: {} });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

async function failure(mode: string): Promise<{ code: unknown; status: unknown; message: string }> {
  const err = await org.hay.plugins.invokeTool
    .mutate({ pluginId: 'shaped', toolName: 'shaped', arguments: { mode } })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(TRPCClientError);
  const e = err as TRPCClientError<AppRouter>;
  const data = e.data as unknown as { hayCode?: unknown; httpStatus?: unknown };
  return { code: data.hayCode, status: data.httpStatus, message: e.message };
}

describe('tool results against the outputSchema', () => {
  it('passes a matching result, an isError result and a tool without outputSchema through unchanged', async () => {
    const ok = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'shaped',
      toolName: 'shaped',
      arguments: { mode: 'ok' },
    });
    expect(ok.structuredContent).toMatchObject({ n: 1 });
    const failed = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'shaped',
      toolName: 'shaped',
      arguments: { mode: 'fail' },
    });
    expect(failed.isError).toBe(true);
    const free = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'shaped',
      toolName: 'free',
      arguments: {},
    });
    expect(free.structuredContent).toEqual({ anything: [1, 'two'] });
  });

  it('refuses structuredContent that breaks the schema, naming plugin, tool and path (502), and caches nothing', async () => {
    const wrong = await failure('wrong');
    expect(wrong).toMatchObject({ code: 'TOOL_OUTPUT_INVALID', status: 502 });
    expect(wrong.message).toContain('plugin shaped tool shaped');
    expect(wrong.message).toContain('/n must be integer');
    // the same arguments again reach the plugin: the refused result was not cached
    expect(await failure('wrong')).toMatchObject({ code: 'TOOL_OUTPUT_INVALID' });
    const audit = await org.hay.audit.list.query({ action: 'tool.invoke' });
    expect(audit.entries.filter((e) => e.outcome === 'error').length).toBeGreaterThanOrEqual(2);
  });

  it('refuses a successful result without structuredContent', async () => {
    const missing = await failure('missing');
    expect(missing).toMatchObject({ code: 'TOOL_OUTPUT_INVALID', status: 502 });
    expect(missing.message).toContain('declares an outputSchema but returned no structuredContent');
  });

  it('reaches an MCP client of /mcp as a tool error result with the same message', async () => {
    const client = await modernMcpClient(t.url, org.apiKey);
    try {
      const result = await client.callTool({ name: 'shaped__shaped', arguments: { mode: 'wrong' } });
      expect(result.isError).toBe(true);
      expect(JSON.stringify(result.content)).toContain('does not match its outputSchema');
    } finally {
      await client.close();
    }
  });
});
