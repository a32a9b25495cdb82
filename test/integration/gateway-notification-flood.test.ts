import {
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { legacyMcpClient, modernMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A plugin flooding log and progress notifications during one `/mcp` tools/call. The SDK queues what it
 * sends on the request's SSE stream without bound while the client does not read, so the host must cap
 * what it relays per request (HAY_MCP_MAX_NOTIFICATION_BYTES_PER_CALL), tell the client once, and still
 * answer the call; the next call gets its own budget.
 */
const FLOOD_SERVER = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const server = new McpServer({ name: 'flood', version: '1.0.0' }, { capabilities: { logging: {}, resources: { subscribe: true } } });
const subscribed = new Set();
server.server.setRequestHandler(SubscribeRequestSchema, (req) => { subscribed.add(req.params.uri); return {}; });
server.server.setRequestHandler(UnsubscribeRequestSchema, (req) => { subscribed.delete(req.params.uri); return {}; });
server.registerTool('touch', { inputSchema: { n: z.number().int() } }, async ({ n }) => {
  for (let i = 0; i < n; i++) await server.server.sendResourceUpdated({ uri: 'note://x' });
  await server.server.sendResourceUpdated({ uri: 'note://end' });
  return { content: [{ type: 'text', text: 'touched ' + n }] };
});
server.registerTool('flood', { inputSchema: { count: z.number().int(), chars: z.number().int() } }, async ({ count, chars }, extra) => {
  const token = extra._meta?.progressToken;
  const filler = 'x'.repeat(chars);
  for (let i = 0; i < count; i++) {
    await server.sendLoggingMessage({ level: 'emergency', logger: 'flood', data: i + ':' + filler });
    if (token !== undefined)
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, message: filler } });
  }
  return { content: [{ type: 'text', text: 'flooded ' + count }] };
});
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;

const BUDGET = 64 * 1024;
const COUNT = 200;
const CHARS = 10_000;

let t: TestHost;
let org: Awaited<ReturnType<TestHost['createOrganization']>>;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  t = await startTestHost({
    corePlugins: [],
    plugins: { 'core/flood': toolkitPlugin('flood', {}, { 'server.mjs': FLOOD_SERVER }) },
    config: { callTimeoutMs: 20_000, startTimeoutMs: 10_000, mcpMaxNotificationBytesPerCall: BUDGET },
  });
  org = await t.createOrganization('flood');
  await org.hay.plugins.enable.mutate({ pluginId: 'flood', configuration: {} });
});

afterAll(async () => {
  for (const c of closers) await c().catch(() => undefined);
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

interface Seen {
  logs: number;
  progress: number;
  bytes: number;
  warnings: string[];
}

const textOf = (r: Record<string, unknown>) =>
  ((r.content as { type: string; text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('');

function record(seen: Seen, data: unknown, logger: string | undefined): void {
  if (logger === 'hay' && typeof data === 'string') {
    seen.warnings.push(data);
    return;
  }
  seen.logs++;
  seen.bytes += typeof data === 'string' ? data.length : 0;
}

describe.each(['legacy', 'modern'] as const)('%s era: a plugin flooding notifications', (era) => {
  it('relays at most the per-call budget, says so once, and answers the call; the next call has its own', async () => {
    for (const round of [1, 2]) {
      const seen: Seen = { logs: 0, progress: 0, bytes: 0, warnings: [] };
      const onprogress = (p: { message?: string }) => {
        seen.progress++;
        seen.bytes += p.message?.length ?? 0;
      };
      let result: Record<string, unknown>;
      if (era === 'legacy') {
        const client = await legacyMcpClient(t.url, org.apiKey);
        closers.push(() => client.close());
        client.setNotificationHandler(LoggingMessageNotificationSchema, (n) =>
          record(seen, n.params.data, n.params.logger),
        );
        result = await client.callTool(
          { name: 'flood__flood', arguments: { count: COUNT, chars: CHARS } },
          undefined,
          { onprogress, timeout: 30_000 },
        );
      } else {
        const client = await modernMcpClient(t.url, org.apiKey);
        closers.push(() => client.close());
        client.setNotificationHandler('notifications/message', (n) =>
          record(seen, n.params.data, n.params.logger),
        );
        result = (await client.callTool(
          {
            name: 'flood__flood',
            arguments: { count: COUNT, chars: CHARS },
            _meta: { 'io.modelcontextprotocol/logLevel': 'debug' },
          },
          { onprogress, timeout: 30_000 },
        )) as Record<string, unknown>;
      }
      expect(textOf(result), `round ${round}`).toBe(`flooded ${COUNT}`);
      await waitFor(
        () => seen.warnings.length > 0 || seen.logs + seen.progress >= 2 * COUNT,
        'the budget warning, or every notification',
      );
      // before the fix every one of the 2 x 200 notifications of 10 000 characters (~4 MB) was relayed
      expect(seen.bytes, `round ${round}`).toBeLessThanOrEqual(BUDGET);
      expect(seen.logs, `round ${round}`).toBeGreaterThan(0);
      expect(seen.warnings, `round ${round}`).toHaveLength(1);
      expect(seen.warnings[0]).toMatch(/plugin flood .*HAY_MCP_MAX_NOTIFICATION_BYTES_PER_CALL/);
    }
  });
});

describe('a plugin flooding resources/updated for a subscribed URI', () => {
  it('reaches the session at most once per 250 ms per URI', async () => {
    const client = await legacyMcpClient(t.url, org.apiKey);
    closers.push(() => client.close());
    const seen = { x: 0, end: 0 };
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      if (n.params.uri === 'hay://flood/note://x') seen.x++;
      if (n.params.uri === 'hay://flood/note://end') seen.end++;
    });
    await client.subscribeResource({ uri: 'hay://flood/note://x' });
    await client.subscribeResource({ uri: 'hay://flood/note://end' });
    const started = Date.now();
    const r = await client.callTool({ name: 'flood__touch', arguments: { n: 2_000 } });
    expect(textOf(r)).toBe('touched 2000');
    // note://end is sent after the 2000 updates of note://x, on the same stream
    await waitFor(() => seen.end >= 1, 'the update of note://end');
    // one per 250 ms window (the first at once); before the fix each of the 2000 was sent on (and
    // queued without bound for a session that does not read)
    expect(seen.x).toBeGreaterThanOrEqual(1);
    expect(seen.x).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - started) / 250));
  });
});
