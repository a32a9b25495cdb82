import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestHost, type TestHost } from '../helpers/host.js';
import { legacyMcpClient, modernMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * The reference server `@modelcontextprotocol/server-everything` (published, unchanged; installed by the
 * host with a real `npm install`, so this needs network) as a plugin behind `/mcp`, from clients of both
 * protocol eras: its tools are listed with the plugin prefix, calls and progress pass through.
 */

let t: TestHost;
let apiKey: string;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  t = await startTestHost({
    plugins: {
      'core/everything': {
        'manifest.json': {
          id: 'everything',
          name: 'Everything',
          version: '1.0.0',
          description: 'the MCP reference server',
          type: ['mcp-connector'],
          capabilities: {
            mcp: {
              connection: { type: 'local' },
              transport: 'stdio',
              startCommand: 'node node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio',
            },
          },
        },
        'package.json': {
          name: 'hay-plugin-everything',
          version: '1.0.0',
          private: true,
          type: 'module',
          dependencies: { '@modelcontextprotocol/server-everything': '2026.8.31' },
        },
      },
    },
    config: { installTimeoutMs: 110_000, startTimeoutMs: 30_000, callTimeoutMs: 20_000 },
  });
  const org = await t.createOrganization('everything');
  apiKey = org.apiKey;
  await org.hay.plugins.enable.mutate({ pluginId: 'everything', configuration: {} });
  // the first start runs `npm install` (longer than a listing waits): done here, through the tRPC API
  await org.hay.plugins.listTools.query({ pluginId: 'everything' });
}, 150_000);

afterAll(async () => {
  for (const c of closers) await c().catch(() => undefined);
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin and npm process to exit');
});

it('lists and calls server-everything through /mcp in both eras, with progress', async () => {
  const legacy = await legacyMcpClient(t.url, apiKey);
  closers.push(() => legacy.close());
  const tools = (await legacy.listTools()).tools.map((x) => x.name);
  expect(tools).toContain('everything__echo');
  expect(tools.every((n) => n.startsWith('everything__') && n.length <= 64)).toBe(true);
  const echoed = await legacy.callTool({ name: 'everything__echo', arguments: { message: 'ref' } });
  expect(JSON.stringify(echoed.content)).toContain('ref');

  const modern = await modernMcpClient(t.url, apiKey);
  closers.push(() => modern.close());
  expect((await modern.listTools()).tools.map((x) => x.name)).toEqual(expect.arrayContaining(tools));
  const long = tools.find((n) => /long/i.test(n));
  expect(long).toBeDefined();
  const seen: number[] = [];
  await modern.callTool(
    { name: long ?? '', arguments: { duration: 1, steps: 3 } },
    { onprogress: (p) => seen.push(p.progress) },
  );
  expect(seen.length).toBeGreaterThan(0);
}, 120_000);
