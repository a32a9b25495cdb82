/* global fetch, AbortSignal */
// Incoming Webhook channel: the host serves POST /v1/hooks/<orgId>/incoming-webhook/incoming, verifies
// the caller, answers 202 and calls handle_incoming with {event}; this publishes the request's JSON body
// as the organization event <prefix>.received through the `events` platform API.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const prefix = process.env.INCOMING_EVENT_PREFIX || 'incoming';
const server = new McpServer({ name: 'incoming-webhook', version: '1.0.0' });

server.registerTool(
  'handle_incoming',
  {
    description: 'Publishes an accepted inbound request as <prefix>.received',
    inputSchema: { event: z.record(z.string(), z.unknown()) },
  },
  async ({ event }) => {
    const request = event.payload ?? {};
    const body = request.json !== undefined ? request.json : request.body;
    const res = await fetch(`${process.env.HAY_API_URL}/v1/platform/events/publish`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${process.env.HAY_API_TOKEN}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        type: `${prefix}.received`,
        payload: { body, headers: request.headers ?? {}, receivedAt: request.receivedAt },
        // a retried delivery publishes with the same key: the host answers duplicate, nothing is sent twice
        idempotencyKey: `incoming:${event.deliveryId}`,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok)
      return { isError: true, content: [{ type: 'text', text: `publish failed: ${res.status} ${text}` }] };
    return { content: [{ type: 'text', text }] };
  },
);

await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
