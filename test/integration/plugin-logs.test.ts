import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, type PluginFiles, type TestHost } from '../helpers/host.js';

/**
 * plugins.logs: the last stderr lines of the organization's own instance of a plugin, sanitized like errors
 * (environment values and host paths redacted); another organization never sees them; a shared instance
 * shows none.
 */
const SERVER = `import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
const server = new McpServer({ name: 'logger', version: '1.0.0' });
server.registerTool('shout', { description: 'Writes a stderr line', inputSchema: { text: z.string() } },
  async ({ text }) => {
    process.stderr.write('shout ' + text + ' org=' + process.env.HAY_ORG_ID + ' secret=' + (process.env.LOG_SECRET ?? '') + ' host=' + process.execPath + '\\n');
    return { content: [{ type: 'text', text: 'ok' }] };
  });
process.stderr.write('logger started\\n');
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;

async function hayCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TRPCClientError) {
      const data = err.data as { hayCode?: string; code?: string } | undefined;
      return data?.hayCode ?? data?.code;
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

function plugin(id: string, shared: boolean): PluginFiles {
  return {
    'package.json': { name: id, version: '1.0.0', private: true, type: 'module' },
    'mcp/index.js': SERVER,
    'manifest.json': {
      id,
      name: id,
      version: '1.0.0',
      description: 'Writes stderr lines',
      type: ['mcp-connector'],
      configSchema: { secret: { type: 'string', encrypted: true, env: 'LOG_SECRET' } },
      ...(shared ? { runtime: { shared: true } } : {}),
      capabilities: {
        mcp: {
          connection: { type: 'local' },
          transport: 'stdio',
          startCommand: 'node mcp/index.js',
          tools: [
            {
              name: 'shout',
              description: 'Writes a stderr line',
              input_schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
            },
          ],
        },
      },
    },
  };
}

describe('plugins.logs', () => {
  let t: TestHost;
  let a: Awaited<ReturnType<TestHost['createOrganization']>>;
  let b: Awaited<ReturnType<TestHost['createOrganization']>>;

  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      plugins: {
        'core/logger': plugin('logger', false),
        'core/shared-logger': plugin('shared-logger', true),
      },
    });
    a = await t.createOrganization('logs-a');
    b = await t.createOrganization('logs-b');
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  const shout = (org: typeof a, pluginId: string, text: string) =>
    org.hay.plugins.invokeTool.mutate({ pluginId, toolName: 'shout', arguments: { text } });

  it("shows the org's own stderr lines, redacted; another org sees none of them", async () => {
    await a.hay.plugins.enable.mutate({
      pluginId: 'logger',
      configuration: { secret: 'alpha-secret-value' },
    });
    await shout(a, 'logger', 'hello-from-a');
    // stderr arrives asynchronously to the tool result
    await expect
      .poll(async () => (await a.hay.plugins.logs.query({ pluginId: 'logger' })).lines.join('\n'), {
        timeout: 10_000,
      })
      .toContain('hello-from-a');
    const logs = await a.hay.plugins.logs.query({ pluginId: 'logger' });
    expect(logs.shared).toBe(false);
    expect(logs.lines[0]).toBe('logger started');
    const line = logs.lines.find((l) => l.includes('hello-from-a')) ?? '';
    expect(line).toContain(`org=${a.organizationId}`);
    expect(line).toContain('secret=[redacted]');
    expect(line).toContain('host=<path>');
    expect(JSON.stringify(logs)).not.toContain('alpha-secret-value');
    expect(JSON.stringify(logs)).not.toContain(process.execPath);
    // bounded by the caller's count
    expect((await a.hay.plugins.logs.query({ pluginId: 'logger', lines: 1 })).lines).toEqual([line]);

    // org B: nothing before its own instance runs, then only its own lines
    expect(await b.hay.plugins.logs.query({ pluginId: 'logger' })).toEqual({ lines: [], shared: false });
    await b.hay.plugins.enable.mutate({ pluginId: 'logger', configuration: {} });
    await shout(b, 'logger', 'hello-from-b');
    await expect
      .poll(async () => (await b.hay.plugins.logs.query({ pluginId: 'logger' })).lines.join('\n'), {
        timeout: 10_000,
      })
      .toContain('hello-from-b');
    const bText = (await b.hay.plugins.logs.query({ pluginId: 'logger' })).lines.join('\n');
    expect(bText).not.toContain('hello-from-a');
    expect(bText).not.toContain(a.organizationId);
    expect((await a.hay.plugins.logs.query({ pluginId: 'logger' })).lines.join('\n')).not.toContain(
      'hello-from-b',
    );
  });

  it('keeps the last lines after the instance stopped', async () => {
    await a.hay.plugins.stopInstance.mutate({ pluginId: 'logger' });
    expect((await a.hay.plugins.logs.query({ pluginId: 'logger' })).lines.join('\n')).toContain(
      'hello-from-a',
    );
  });

  it('shows no lines of a shared instance (its output is not tied to one org)', async () => {
    expect(await b.hay.plugins.logs.query({ pluginId: 'shared-logger' })).toEqual({
      lines: [],
      shared: true,
    });
    await a.hay.plugins.enable.mutate({ pluginId: 'shared-logger', configuration: {} });
    await shout(a, 'shared-logger', 'shared-line');
    expect(await a.hay.plugins.logs.query({ pluginId: 'shared-logger' })).toEqual({
      lines: [],
      shared: true,
    });
  });

  it('refuses a bad line count and an unknown plugin', async () => {
    expect(await hayCode(a.hay.plugins.logs.query({ pluginId: 'logger', lines: 201 }))).toBe('BAD_REQUEST');
    expect(await hayCode(a.hay.plugins.logs.query({ pluginId: 'nope' }))).toBe('PLUGIN_NOT_FOUND');
  });
});
