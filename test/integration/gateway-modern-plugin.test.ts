import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { legacyMcpClient, modernMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A plugin that speaks only MCP 2026-07-28 (SDK v2 server over stdio refusing `initialize`), behind
 * plugins.invokeTool and behind /mcp in both eras: the host's SDK 1.32 client is refused, and the
 * connection factory starts it again on `@modelcontextprotocol/client` 2.x (ModernPluginConnection).
 */

const MODERN_ONLY = readFileSync(
  path.join(import.meta.dirname, '..', 'fixtures', 'servers', 'modern-only.mjs'),
  'utf8',
);

let t: TestHost;
let org: { organizationId: string; apiKey: string; hay: TestHost['admin'] };

beforeAll(async () => {
  t = await startTestHost({
    plugins: { 'core/modern': toolkitPlugin('modern', {}, { 'server.mjs': MODERN_ONLY }) },
    config: { callTimeoutMs: 10_000, startTimeoutMs: 10_000 },
  });
  org = await t.createOrganization('a');
  await org.hay.plugins.enable.mutate({ pluginId: 'modern', configuration: {} });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

describe('a 2026-07-28-only plugin', () => {
  it('works behind plugins.invokeTool (tools listed, argument validation, call)', async () => {
    const tools = await org.hay.plugins.listTools.query({ pluginId: 'modern' });
    expect(tools.map((x) => x.name)).toEqual(['echo']);
    const r = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'modern',
      toolName: 'echo',
      arguments: { message: 'via trpc' },
    });
    expect(r.content).toEqual([{ type: 'text', text: 'via trpc' }]);
    await expect(
      org.hay.plugins.invokeTool.mutate({ pluginId: 'modern', toolName: 'echo', arguments: { message: 1 } }),
    ).rejects.toThrow(/ARGUMENTS_INVALID|must be string/);
  });

  it('works behind /mcp for clients of both eras', async () => {
    for (const client of [
      await legacyMcpClient(t.url, org.apiKey),
      await modernMcpClient(t.url, org.apiKey),
    ]) {
      expect((await client.listTools()).tools.map((x) => x.name)).toEqual(['modern__echo']);
      const r = await client.callTool({ name: 'modern__echo', arguments: { message: 'via mcp' } });
      expect(r.content).toEqual([{ type: 'text', text: 'via mcp' }]);
      await client.close();
    }
  });
});
