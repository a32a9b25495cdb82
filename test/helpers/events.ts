import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { toolkitPlugin, type PluginFiles } from './host.js';

/**
 * MCP server for event test plugins: `publish {type, payload?, idempotencyKey?}` calls the events platform
 * API with the plugin's own token; `on_event {event}` appends the event to
 * $HAY_PLUGIN_DATA_DIR/events.jsonl; `fail_event` always answers isError.
 */
export const EVENTS_SERVER = `
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: process.env.HAY_PLUGIN_ID ?? 'events', version: '1.0.0' });
server.registerTool(
  'publish',
  { inputSchema: { type: z.string(), payload: z.unknown().optional(), idempotencyKey: z.string().optional() } },
  async (args) => {
    const res = await fetch(process.env.HAY_API_URL + '/v1/platform/events/publish', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + process.env.HAY_API_TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify(args),
    });
    const text = await res.text();
    return { isError: !res.ok, content: [{ type: 'text', text: res.status + ' ' + text }] };
  },
);
server.registerTool('on_event', { inputSchema: { event: z.record(z.string(), z.unknown()) } }, async ({ event }) => {
  appendFileSync(path.join(process.env.HAY_PLUGIN_DATA_DIR, 'events.jsonl'), JSON.stringify(event) + '\\n');
  return { content: [{ type: 'text', text: 'ok' }] };
});
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;

export function eventsPlugin(id: string, manifest: Record<string, unknown> = {}): PluginFiles {
  return toolkitPlugin(id, manifest, { 'server.mjs': EVENTS_SERVER });
}

/** Events a plugin's on_event tool recorded for one org (empty when it never ran there). */
export function recordedEvents(dataDir: string, orgId: string, pluginId: string): Record<string, unknown>[] {
  const file = path.join(dataDir, 'plugin-data', orgId, pluginId, 'events.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Verifies `Hay-Signature` independently of src/: HMAC-SHA256(secret, `${t}.${body}`), hex, within 5 min. */
export function verifyHayHeader(header: string | undefined, body: string, secret: string): boolean {
  if (!header) return false;
  const parts = header.split(',').map((p) => p.split('='));
  const t = parts.find(([k]) => k === 't')?.[1];
  if (!t || Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  return parts
    .filter(([k]) => k === 'v1')
    .some(([, v]) => {
      const given = Buffer.from(v ?? '');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

/** A Hay-Signature header for `body` (what a sender to an inbound route computes). */
export function haySign(secret: string, body: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export interface ReceivedRequest {
  headers: http.IncomingHttpHeaders;
  body: string;
  status: number;
}

/**
 * A local webhook receiver. `respond(req, n)` picks the status for the n-th request (1-based), and may
 * hold the answer by resolving later; requests are recorded on arrival (status 0 until answered), and `processed` holds each Hay-Idempotency-Key once, as a receiver
 * deduplicating on it would. `delayMs` holds each answer.
 */
export async function startReceiver(
  respond: (
    r: { headers: http.IncomingHttpHeaders; body: string },
    n: number,
  ) => number | Promise<number> = () => 200,
  options: { delayMs?: number } = {},
) {
  const requests: ReceivedRequest[] = [];
  const processed = new Map<string, string>();
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const key = String(req.headers['hay-idempotency-key'] ?? '');
      if (key && !processed.has(key)) processed.set(key, body);
      const entry: ReceivedRequest = { headers: req.headers, body, status: 0 };
      requests.push(entry);
      void Promise.resolve(respond({ headers: req.headers, body }, requests.length)).then((status) => {
        entry.status = status;
        const answer = () => {
          if (!res.destroyed)
            res
              .writeHead(status, { 'content-type': 'text/plain' })
              .end(status < 300 ? 'ok' : 'receiver says no');
        };
        if (options.delayMs) setTimeout(answer, options.delayMs);
        else answer();
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    processed,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
