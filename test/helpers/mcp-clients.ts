import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from '@modelcontextprotocol/client';

/** A 2025-11-25 client (SDK 1.x, initialize + Mcp-Session-Id) of `<base>/mcp` with `apiKey`. */
export async function legacyMcpClient(base: string, apiKey: string): Promise<LegacyClient> {
  const client = new LegacyClient({ name: 'test-legacy', version: '1.0.0' });
  await client.connect(
    new LegacyTransport(new URL(`${base}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${apiKey}` } },
    }),
  );
  return client;
}

/** A 2026-07-28 client (SDK 2.x, pinned: server/discover, per-request envelope) of `<base>/mcp`. */
export async function modernMcpClient(base: string, apiKey: string): Promise<ModernClient> {
  const client = new ModernClient(
    { name: 'test-modern', version: '1.0.0' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(
    new ModernTransport(new URL(`${base}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${apiKey}` } },
    }),
  );
  return client;
}

/**
 * A plugin MCP server (SDK 1.x, stdio): `echo {message}`, `steps {n}` (n progress notifications, then
 * done), `wait {marker}` (never answers; writes `marker` when the request is cancelled).
 */
export const PROGRESS_SERVER = `
import { writeFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'progress', version: '1.0.0' });
server.registerTool('echo', { inputSchema: { message: z.string() } }, async ({ message }) => ({
  content: [{ type: 'text', text: message }],
}));
server.registerTool('steps', { inputSchema: { n: z.number().int().min(1).max(10) } }, async ({ n }, extra) => {
  const token = extra._meta?.progressToken;
  for (let i = 1; i <= n; i++)
    if (token !== undefined)
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: n } });
  return { content: [{ type: 'text', text: 'done ' + n }] };
});
server.registerTool('wait', { inputSchema: { marker: z.string() } }, ({ marker }, extra) =>
  new Promise(() => {
    extra.signal.addEventListener('abort', () => writeFileSync(marker, 'cancelled'));
  }),
);
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;
