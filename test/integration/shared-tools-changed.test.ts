import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, type PluginFiles, type TestHost } from '../helpers/host.js';

/**
 * A shared instance's tool list is every organization's: the argument validators compiled from it are
 * shared by the organizations, and a tools/list_changed (announced by the one process) renews them for all,
 * not only for the organization whose call changed the list.
 */
const SERVER = `import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
const server = new McpServer({ name: 'changer', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } });
const take = server.registerTool('take', { inputSchema: { text: z.string() } },
  async (args) => ({ content: [{ type: 'text', text: JSON.stringify(args) }] }));
server.registerTool('flip', {}, async () => {
  take.update({ paramsSchema: { n: z.number() } });
  return { content: [{ type: 'text', text: 'flipped' }] };
});
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;

const PLUGIN: PluginFiles = {
  'package.json': { name: 'changer', version: '1.0.0', private: true, type: 'module' },
  'mcp/index.js': SERVER,
  'manifest.json': {
    id: 'changer',
    name: 'changer',
    version: '1.0.0',
    description: 'Changes a tool input schema on request',
    type: ['mcp-connector'],
    runtime: { shared: true },
    capabilities: {
      mcp: {
        connection: { type: 'local' },
        transport: 'stdio',
        startCommand: 'node mcp/index.js',
        tools: [
          { name: 'take', description: 'Returns its arguments', input_schema: { type: 'object' } },
          { name: 'flip', description: 'Changes the input schema of take', input_schema: { type: 'object' } },
        ],
      },
    },
  },
};

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof TRPCClientError) {
      const data = err.data as { hayCode?: string; code?: string } | undefined;
      return data?.hayCode ?? data?.code ?? 'error';
    }
    throw err;
  }
}

describe('shared instance: tools/list_changed and argument validators', () => {
  let t: TestHost;
  let a: Awaited<ReturnType<TestHost['createOrganization']>>;
  let b: Awaited<ReturnType<TestHost['createOrganization']>>;

  beforeAll(async () => {
    t = await startTestHost({ corePlugins: [], plugins: { 'core/changer': PLUGIN } });
    a = await t.createOrganization('changer-a');
    b = await t.createOrganization('changer-b');
    for (const org of [a, b]) await org.hay.plugins.enable.mutate({ pluginId: 'changer', configuration: {} });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  const take = (org: typeof a, args: Record<string, unknown>) =>
    outcome(org.hay.plugins.invokeTool.mutate({ pluginId: 'changer', toolName: 'take', arguments: args }));

  it("renews every organization's validator when one organization's call changes the list", async () => {
    // both organizations have validated against the first schema (text: string, required)
    expect(await take(a, { text: 'x' })).toBe('ok');
    expect(await take(b, { text: 'y' })).toBe('ok');
    expect(await take(b, { n: 1 })).toBe('ARGUMENTS_INVALID');
    expect(
      await outcome(
        a.hay.plugins.invokeTool.mutate({ pluginId: 'changer', toolName: 'flip', arguments: {} }),
      ),
    ).toBe('ok');
    // the notification arrives asynchronously to flip's result; then B validates against the new schema
    await expect.poll(() => take(b, { n: 1 }), { timeout: 10_000 }).toBe('ok');
    expect(await take(b, { text: 'y' })).toBe('ARGUMENTS_INVALID');
    expect(await take(a, { n: 2 })).toBe('ok');
  });
});
