// MCP stdio server: stdout carries the protocol, so diagnostics go to stderr only.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { readConfig, type ConnectorConfig } from './config.js';
import { callApi, resolveUrl } from './http-call.js';

const outputSchema = { status: z.number().int(), body: z.unknown() };

async function runTool(
  config: ConnectorConfig,
  method: 'GET' | 'POST',
  args: { path: string; query?: Record<string, string>; body?: unknown },
  signal: AbortSignal,
): Promise<CallToolResult> {
  let url: URL;
  try {
    url = resolveUrl(config.baseUrl, args.path, args.query);
  } catch (err) {
    return { isError: true, content: [{ type: 'text', text: (err as Error).message }] };
  }
  try {
    const outcome = await callApi(config, { method, url, body: args.body }, signal);
    const bodyText = typeof outcome.body === 'string' ? outcome.body : JSON.stringify(outcome.body);
    if (!outcome.ok) {
      return {
        isError: true,
        content: [
          { type: 'text', text: `${method} ${url.pathname} failed with HTTP ${outcome.status}: ${bodyText}` },
        ],
        structuredContent: { status: outcome.status, body: outcome.body },
      };
    }
    return {
      content: [{ type: 'text', text: bodyText }],
      structuredContent: { status: outcome.status, body: outcome.body },
    };
  } catch (err) {
    const reason =
      err instanceof DOMException && err.name === 'TimeoutError'
        ? `timed out after ${config.timeoutMs} ms`
        : describeFailure(err);
    return {
      isError: true,
      content: [{ type: 'text', text: `${method} ${url.pathname} failed: ${reason}` }],
    };
  }
}

/** The failure with its cause (undici reports the proxy's refusal, e.g. "Egress denied", as the cause). */
function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const causes: string[] = [];
  for (
    let c: unknown = err instanceof Error ? err.cause : undefined;
    c instanceof Error && causes.length < 4;
    c = c.cause
  )
    causes.push(c.message);
  if (causes.some((m) => /Proxy response \(403\)/.test(m)))
    return 'Egress denied by the host: baseUrl resolves to a private, loopback, link-local or metadata address the operator has not allowed (HAY_EGRESS_ALLOW)';
  const cause = causes.find((m) => m !== message);
  return cause ? `${message}: ${cause}` : message;
}

function buildServer(config: ConnectorConfig): McpServer {
  const server = new McpServer({ name: 'http-api-connector', version: '1.0.0' });
  server.registerTool(
    'http_get',
    {
      description: 'GET baseUrl + path (with optional query parameters) and return the status and body.',
      inputSchema: {
        path: z.string().min(1).describe('Path under the configured base URL, e.g. /customers/42'),
        query: z.record(z.string(), z.string()).optional().describe('Query string parameters'),
      },
      outputSchema,
    },
    (args, extra) => runTool(config, 'GET', args, extra.signal),
  );
  server.registerTool(
    'http_post',
    {
      description: 'POST a JSON body to baseUrl + path and return the status and body.',
      inputSchema: {
        path: z.string().min(1).describe('Path under the configured base URL, e.g. /tickets'),
        body: z.unknown().describe('JSON value sent as the request body'),
      },
      outputSchema,
    },
    (args, extra) => runTool(config, 'POST', args, extra.signal),
  );
  return server;
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const server = buildServer(config);
  await server.connect(new StdioServerTransport());
  const stop = (): void => {
    void server.close().finally(() => process.exit(0));
  };
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`http-api-connector: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
