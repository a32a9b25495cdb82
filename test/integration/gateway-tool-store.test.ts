import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, TOOLKIT_SERVER, type TestHost } from '../helpers/host.js';
import { legacyMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A plugin's tools/list is stored per (org, plugin) as jsonb, which refuses NUL and unpaired surrogates:
 * such text in a plugin's (a third-party server's) descriptions must not keep the plugin out of /mcp.
 */
const NUL_SERVER = TOOLKIT_SERVER.replace(
  "server.registerTool('echo', { inputSchema",
  "server.registerTool('echo', { description: 'line\\u0000break \\ud83d', inputSchema",
);

let t: TestHost;
let org: { organizationId: string; apiKey: string };

beforeAll(async () => {
  expect(NUL_SERVER).not.toBe(TOOLKIT_SERVER);
  t = await startTestHost({
    plugins: { 'core/nul': toolkitPlugin('nul', {}, { 'server.mjs': NUL_SERVER }) },
  });
  const o = await t.createOrganization('acme');
  org = o;
  await o.hay.plugins.enable.mutate({ pluginId: 'nul', configuration: {} });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

it('a tools/list with NUL or a lone surrogate in a description is listed on /mcp, and stored', async () => {
  // found 2026-12-02: storing the list failed, so the plugin was "left out of the MCP tool list" on every listing
  const client = await legacyMcpClient(t.url, org.apiKey);
  try {
    const { tools } = await client.listTools();
    expect(tools.find((x) => x.name === 'nul__echo')?.description).toBe('line\u0000break \ud83d');
  } finally {
    await client.close();
  }
  const stored = [...(await t.host.services.gateway.store.toolLists(org.organizationId)).values()];
  expect(stored.map((l) => l.tools.find((x) => x.name === 'echo')?.description)).toEqual([
    'line\ufffdbreak \ufffd',
  ]);
});

it('an unchanged tools/list is not written again when the catalog is rebuilt', async () => {
  // found 2026-12-02: jsonb keeps object keys in its own order, so the stored list never compared equal to
  // the live one and every catalog rebuild (each memo period, each event) rewrote the row
  const client = await legacyMcpClient(t.url, org.apiKey);
  const stamps: string[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      t.host.services.gateway.catalog.invalidate(org.organizationId);
      await client.listTools();
      const rows = await t.host.services.database.db.execute(
        sql`select updated_at::text as at from gateway_tool_lists`,
      );
      stamps.push(JSON.stringify((rows as unknown as { rows: unknown[] }).rows));
    }
  } finally {
    await client.close();
  }
  expect(new Set(stamps).size).toBe(1);
});
