import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { packageRoot } from '../../src/paths.js';

/** The test plugin's folder and launch command, as the host runs it (`node mcp/index.js`). */
export function testPluginDir(): string {
  return path.join(packageRoot(), 'plugins', 'core', 'hay-plugin-test');
}

/** An SDK client connected over stdio to a fresh echo server process (spawn + initialize). */
export async function connectDirect(): Promise<Client> {
  const client = new Client({ name: 'hay-bench', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['mcp/index.js'],
    cwd: testPluginDir(),
    stderr: 'ignore',
  });
  await client.connect(transport);
  return client;
}

export interface Gateway {
  url: string;
  close(): Promise<void>;
}

/**
 * The peer setup: an HTTP server with the SDK's StreamableHTTPServerTransport (stateless, JSON responses)
 * whose per-request MCP server forwards tools/list and tools/call to ONE shared stdio client of the echo
 * server, as stdio-to-HTTP gateways do.
 */
export async function startGateway(): Promise<Gateway> {
  const upstream = await connectDirect();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const mcp = new Server({ name: 'gateway', version: '1.0.0' }, { capabilities: { tools: {} } });
        mcp.setRequestHandler(ListToolsRequestSchema, () => upstream.listTools());
        mcp.setRequestHandler(CallToolRequestSchema, (r) => upstream.callTool(r.params) as never);
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          enableJsonResponse: true,
        });
        res.on('close', () => {
          void transport.close();
          void mcp.close();
        });
        await mcp.connect(transport);
        await transport.handleRequest(
          req,
          res,
          JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
        );
      })().catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await upstream.close();
    },
  };
}

/** JSON-RPC body of one echo tools/call for the gateway. */
export function gatewayCall(id: number, message: string): unknown {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } };
}

export const GATEWAY_HEADERS = {
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};
