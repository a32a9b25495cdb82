import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from '@modelcontextprotocol/client';

/**
 * How a test client answers a server's sampling and elicitation requests: sampling returns
 * `sampled: <first message text>`, elicitation accepts with `{ name: 'Ada' }`. Unset: the client
 * declares neither capability.
 */
export interface ClientAnswers {
  answers?: boolean;
}

const sampled = (params: { messages: { content: unknown }[] }) => {
  const first = params.messages[0]?.content as { text?: string } | undefined;
  return {
    model: 'test-model',
    role: 'assistant' as const,
    content: { type: 'text' as const, text: `sampled: ${first?.text ?? ''}` },
  };
};

/** A 2025-11-25 client (SDK 1.x, initialize + Mcp-Session-Id) of `<base>/mcp` with `apiKey`. */
export async function legacyMcpClient(
  base: string,
  apiKey: string,
  options: ClientAnswers = {},
): Promise<LegacyClient> {
  const client = new LegacyClient(
    { name: 'test-legacy', version: '1.0.0' },
    options.answers ? { capabilities: { sampling: {}, elicitation: {} } } : {},
  );
  if (options.answers) {
    client.setRequestHandler(CreateMessageRequestSchema, (req) => sampled(req.params));
    client.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { name: 'Ada' } }));
  }
  await client.connect(
    new LegacyTransport(new URL(`${base}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${apiKey}` } },
    }),
  );
  return client;
}

/** A 2026-07-28 client (SDK 2.x, pinned: server/discover, per-request envelope) of `<base>/mcp`. */
export async function modernMcpClient(
  base: string,
  apiKey: string,
  options: ClientAnswers = {},
): Promise<ModernClient> {
  const client = new ModernClient(
    { name: 'test-modern', version: '1.0.0' },
    {
      versionNegotiation: { mode: { pin: '2026-07-28' } },
      ...(options.answers ? { capabilities: { sampling: {}, elicitation: { form: {} } } } : {}),
    },
  );
  if (options.answers) {
    client.setRequestHandler('sampling/createMessage', (req) => sampled(req.params));
    client.setRequestHandler('elicitation/create', () => ({ action: 'accept', content: { name: 'Ada' } }));
  }
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

/**
 * A plugin MCP server (SDK 1.x, stdio) that asks its client for things: `sample {prompt}` (sampling),
 * `elicit` (a form asking for `name`), `roots` (roots/list), `log {message}` (an info log notification);
 * each answers the client's reply as text, or `error: <message>` when the request failed. Resources:
 * `note://a/one` and the template `note://b/{id}`; `add-note` registers `note://a/two` (the SDK then
 * sends resources/list_changed). Prompt: `greet {name}`.
 */
export const ASKER_SERVER = `
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const server = new McpServer({ name: 'asker', version: '1.0.0' }, { capabilities: { logging: {}, resources: { subscribe: true } } });
const subscribed = new Set();
server.server.setRequestHandler(SubscribeRequestSchema, (req) => { subscribed.add(req.params.uri); return {}; });
server.server.setRequestHandler(UnsubscribeRequestSchema, (req) => { subscribed.delete(req.params.uri); return {}; });
server.registerTool('touch', {}, async () => {
  for (const uri of subscribed) await server.server.sendResourceUpdated({ uri });
  return { content: [{ type: 'text', text: JSON.stringify([...subscribed]) }] };
});
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const attempt = async (fn) => { try { return text(await fn()); } catch (e) { return text('error: ' + e.message); } };
server.registerTool('sample', { inputSchema: { prompt: z.string() } }, ({ prompt }) =>
  attempt(async () => {
    const r = await server.server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 20 });
    return r.content.text;
  }),
);
server.registerTool('elicit', {}, () =>
  attempt(async () => {
    const r = await server.server.elicitInput({
      message: 'Your name?',
      requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    });
    return r.action + ' ' + JSON.stringify(r.content ?? {});
  }),
);
server.registerTool('roots', {}, () => attempt(async () => JSON.stringify((await server.server.listRoots()).roots)));
server.registerTool('log', { inputSchema: { message: z.string() } }, async ({ message }) => {
  await server.sendLoggingMessage({ level: 'info', logger: 'asker', data: message });
  return text('logged');
});
server.registerResource('one', 'note://a/one', { mimeType: 'text/plain' }, async (uri) => ({
  contents: [{ uri: uri.href, text: 'note one' }],
}));
const ids = { id: (v) => ['1', '12', '42'].filter((x) => x.startsWith(v)) };
server.registerResource('b', new ResourceTemplate('note://b/{id}', { list: undefined, complete: ids }), {}, async (uri, { id }) => ({
  contents: [{ uri: uri.href, text: 'note b ' + id }],
}));
server.registerTool('add-note', {}, async () => {
  server.registerResource('two', 'note://a/two', { mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, text: 'note two' }],
  }));
  return text('added');
});
const names = (v) => ['Ada', 'Alan', 'Grace'].filter((n) => n.startsWith(v));
server.registerPrompt('greet', { argsSchema: { name: completable(z.string(), names) } }, ({ name }) => ({
  messages: [{ role: 'user', content: { type: 'text', text: 'Hello ' + name } }],
}));
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;
