import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, Server } from '@modelcontextprotocol/server';

export interface SdkFloor {
  url: string;
  close(): Promise<void>;
}

/**
 * The SDK v2's own cost of one 2026-07-28 tools/call over HTTP, with nothing behind it: fastify (as the
 * host) + `createMcpHandler` (strict modern, per-request server, as the host's ModernHandlers) +
 * `toNodeHandler`, whose tools/call answers the echo at once (no plugin, no stdio hop, no host
 * services). POST `/mcp`; also `/echo` returning the body (the bench's (b) on the same server).
 */
export async function startSdkFloor(): Promise<SdkFloor> {
  const build = () => {
    const s = new Server({ name: 'floor', version: '1' }, { capabilities: { tools: { listChanged: true } } });
    s.setRequestHandler('tools/list', () => ({ tools: [] }));
    s.setRequestHandler('tools/call', (req) => {
      const message = String((req.params.arguments as { message?: unknown } | undefined)?.message);
      return { content: [{ type: 'text' as const, text: message }], structuredContent: { message } };
    });
    return s;
  };
  const handler = createMcpHandler(build, { legacy: 'reject' });
  const node = toNodeHandler(handler);
  const app = Fastify();
  app.post('/echo', async (req) => req.body);
  app.post('/mcp', async (req, reply) => {
    reply.hijack();
    await node(req.raw, reply.raw, req.body);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await handler.close();
      await app.close();
    },
  };
}

/** A 2026-07-28 tools/call as an SDK v2 client sends it: the body envelope and the required headers. */
export function modernCall(
  id: number,
  name: string,
  message: string,
): { body: unknown; headers: Record<string, string> } {
  return {
    body: {
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: {
        name,
        arguments: { message },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'hay-bench', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    },
    headers: {
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': name,
    },
  };
}
