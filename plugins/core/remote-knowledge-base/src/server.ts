// Demo remote MCP server (Streamable HTTP, stateless) for the remote-knowledge-base plugin.
//   node dist/server.js [--port 3100] [--host 127.0.0.1]
// KB_AUTH_TOKEN set: every request must carry `Authorization: Bearer <KB_AUTH_TOKEN>` (401 otherwise).
// Prints `listening <port>` to stderr once bound (with --port 0 that is the port the OS chose).
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ARTICLES } from './articles.js';
import { buildKnowledgeBaseServer } from './mcp.js';

const MCP_PATH = '/mcp';

function jsonRpcError(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

function tokenMatches(req: IncomingMessage, expected: string): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1].trim());
  const wanted = Buffer.from(expected);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  authToken: string | undefined,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path !== MCP_PATH) {
    jsonRpcError(res, 404, `Not found: the MCP endpoint is ${MCP_PATH}`);
    return;
  }
  if (authToken !== undefined && !tokenMatches(req, authToken)) {
    jsonRpcError(res, 401, 'Missing or wrong bearer token', { 'www-authenticate': 'Bearer' });
    return;
  }
  if (req.method !== 'POST') {
    // Stateless server: no standalone SSE stream (GET) and no sessions to delete (DELETE).
    jsonRpcError(res, 405, 'Method not allowed: this server is stateless and only accepts POST', {
      allow: 'POST',
    });
    return;
  }
  const server = buildKnowledgeBaseServer(ARTICLES);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}

function main(): void {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '3100' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be an integer 0-65535 (got ${JSON.stringify(values.port)})`);
  }
  const authToken = process.env.KB_AUTH_TOKEN ? process.env.KB_AUTH_TOKEN : undefined;

  const http = createServer((req, res) => {
    handle(req, res, authToken).catch((err: unknown) => {
      process.stderr.write(`request failed: ${err instanceof Error ? err.message : String(err)}\n`);
      jsonRpcError(res, 500, 'Internal server error');
    });
  });
  http.on('error', (err) => {
    process.stderr.write(`remote-knowledge-base: ${err.message}\n`);
    process.exit(1);
  });
  http.listen(port, values.host, () => {
    const address = http.address();
    const bound = typeof address === 'object' && address !== null ? address.port : port;
    process.stderr.write(`listening ${bound}\n`);
  });

  const stop = (): void => {
    http.close(() => process.exit(0));
    http.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (err) {
  process.stderr.write(`remote-knowledge-base: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
