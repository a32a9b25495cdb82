import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Resumption of a 2025-11-25 `/mcp` session's SSE stream: a client whose GET stream dropped reconnects
 * with Last-Event-ID and receives the notifications sent while it was away (the session's bounded
 * event store), over raw HTTP so the test sees the event ids.
 */

let t: TestHost;
let org: { organizationId: string; apiKey: string; hay: TestHost['admin'] };

beforeAll(async () => {
  t = await startTestHost({
    plugins: { 'core/toolkit': toolkitPlugin('toolkit'), 'core/other': toolkitPlugin('other') },
    config: { callTimeoutMs: 5_000, startTimeoutMs: 5_000 },
  });
  org = await t.createOrganization('a');
  await org.hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

interface SseEvent {
  id?: string;
  data: string;
}

/** Reads SSE events of `res` until `until` says stop (or the stream ends). */
async function readEvents(res: Response, until: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: SseEvent[] = [];
  let buffer = '';
  while (!until(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const e: SseEvent = { data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) e.id = line.slice(3).trim();
        else if (line.startsWith('data:')) e.data += line.slice(5).trim();
      }
      events.push(e);
    }
  }
  await reader.cancel().catch(() => undefined);
  return events;
}

describe('2025-11-25 stream resumption', () => {
  it('replays the notifications a dropped GET stream missed, after its Last-Event-ID', async () => {
    const headers = {
      authorization: `Bearer ${org.apiKey}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    };
    const init = await fetch(`${t.url}/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    });
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id') ?? '';
    await init.text();
    const session = { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    await fetch(`${t.url}/mcp`, {
      method: 'POST',
      headers: session,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    }).then((r) => r.text());

    const changed = (events: SseEvent[]) => events.filter((e) => e.data.includes('list_changed'));
    const first = new AbortController();
    const stream = await fetch(`${t.url}/mcp`, {
      headers: { ...session, accept: 'text/event-stream' },
      signal: first.signal,
    });
    expect(stream.status).toBe(200);
    const reading = readEvents(stream, (events) => changed(events).length >= 1);
    await org.hay.plugins.enable.mutate({ pluginId: 'other', configuration: {} });
    const before = changed(await reading);
    const lastId = before.at(-1)?.id;
    expect(lastId).toBeTruthy();
    first.abort();

    // sent while no stream is open
    await org.hay.plugins.disable.mutate({ pluginId: 'other' });
    await new Promise((r) => setTimeout(r, 300));
    const resumed = await fetch(`${t.url}/mcp`, {
      headers: { ...session, accept: 'text/event-stream', 'last-event-id': lastId ?? '' },
    });
    expect(resumed.status).toBe(200);
    const replayed = changed(await readEvents(resumed, (events) => changed(events).length >= 1));
    expect(replayed.length).toBeGreaterThanOrEqual(1);
    expect(replayed[0]?.id).not.toBe(lastId);
    expect(replayed[0]?.data).toMatch(/notifications\/(tools|resources|prompts)\/list_changed/);
  });
});
