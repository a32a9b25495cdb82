// MCP stdio server: stdout carries the protocol, so diagnostics go to stderr only.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { postJson, readPlatformApi, type PlatformApi } from './platform-api.js';

const SEND_PATH = '/v1/platform/email/send';

async function sendEmail(
  api: PlatformApi,
  args: { to: string; subject: string; text: string },
  signal: AbortSignal,
): Promise<CallToolResult> {
  try {
    const outcome = await postJson(
      api,
      SEND_PATH,
      { to: args.to, subject: args.subject, text: args.text },
      signal,
    );
    if (!outcome.ok) {
      return {
        isError: true,
        content: [{ type: 'text', text: `Email not sent (HTTP ${outcome.status}): ${outcome.message}` }],
      };
    }
    const structured =
      typeof outcome.body === 'object' && outcome.body !== null && !Array.isArray(outcome.body)
        ? (outcome.body as Record<string, unknown>)
        : { result: outcome.body };
    return {
      content: [{ type: 'text', text: `Email sent to ${args.to}: ${JSON.stringify(outcome.body)}` }],
      structuredContent: structured,
    };
  } catch (err) {
    const reason =
      err instanceof DOMException && err.name === 'TimeoutError'
        ? `the platform API did not answer within ${api.timeoutMs} ms`
        : (err as Error).message;
    return { isError: true, content: [{ type: 'text', text: `Email not sent: ${reason}` }] };
  }
}

async function main(): Promise<void> {
  const api = readPlatformApi(process.env);
  const server = new McpServer({ name: 'email-notifier', version: '1.0.0' });
  server.registerTool(
    'send_email',
    {
      description: 'Send a plain-text email through the platform email service.',
      inputSchema: {
        to: z.string().min(3).describe('Recipient address, e.g. team@example.com'),
        subject: z.string().min(1).max(998).describe('Subject line'),
        text: z.string().describe('Plain-text body'),
      },
    },
    (args, extra) => sendEmail(api, args, extra.signal),
  );
  await server.connect(new StdioServerTransport());
  const stop = (): void => {
    void server.close().finally(() => process.exit(0));
  };
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`email-notifier: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
