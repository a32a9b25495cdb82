import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { BoundedEventStore } from '../../src/gateway/event-store.js';
import { exposedUri, parseExposedUri } from '../../src/gateway/naming.js';

const note = (n: number): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/message',
  params: { n },
});

async function replay(store: BoundedEventStore, after: string) {
  const got: { id: string; message: JSONRPCMessage }[] = [];
  const stream = await store.replayEventsAfter(after, {
    send: (id, message) => {
      got.push({ id, message });
      return Promise.resolve();
    },
  });
  return { stream, got };
}

describe('BoundedEventStore (resumption of a 2025-11-25 /mcp session)', () => {
  it('replays exactly the events of the same stream after Last-Event-ID, in order', async () => {
    const store = new BoundedEventStore(100, 1024 * 1024);
    const a1 = await store.storeEvent('a', note(1));
    await store.storeEvent('b', note(2));
    await store.storeEvent('a', note(3));
    await store.storeEvent('a', note(4));
    const { stream, got } = await replay(store, a1);
    expect(stream).toBe('a');
    expect(got.map((g) => g.message)).toEqual([note(3), note(4)]);
    expect(await store.getStreamIdForEventId(a1)).toBe('a');
  });

  it('keeps at most maxEvents (oldest dropped); an id older than the window replays what is kept', async () => {
    const store = new BoundedEventStore(3, 1024 * 1024);
    const first = await store.storeEvent('a', note(1));
    for (let i = 2; i <= 10; i++) await store.storeEvent('a', note(i));
    expect(store.size).toBe(3);
    const { stream, got } = await replay(store, first);
    expect(stream).toBe('a');
    expect(got.map((g) => g.message)).toEqual([note(8), note(9), note(10)]);
  });
});

describe('BoundedEventStore bytes (a plugin flooding large log notifications or results)', () => {
  const big = (n: number, chars: number): JSONRPCMessage => ({
    jsonrpc: '2.0',
    method: 'notifications/message',
    params: { level: 'info', data: `${n}:${'x'.repeat(chars)}` },
  });

  it('keeps at most maxBytes of messages, dropping the oldest, whatever the event count allows', async () => {
    const store = new BoundedEventStore(1_000, 64 * 1024);
    const first = await store.storeEvent('a', big(0, 10_000));
    for (let i = 1; i < 100; i++) await store.storeEvent('a', big(i, 10_000));
    // 100 messages of ~10 KB: only the last 6 fit in 64 KB
    expect(store.size).toBeLessThanOrEqual(6);
    expect(store.keptBytes).toBeLessThanOrEqual(64 * 1024);
    const { got } = await replay(store, first);
    expect(
      got.map((g) => (g.message as unknown as { params: { data: string } }).params.data.split(':')[0]),
    ).toEqual(['94', '95', '96', '97', '98', '99'].slice(-store.size));
  });

  it('gives a message larger than maxBytes an id but keeps nothing of it, and keeps what it held', async () => {
    const store = new BoundedEventStore(1_000, 64 * 1024);
    const first = await store.storeEvent('a', note(1));
    await store.storeEvent('a', note(2));
    const huge = await store.storeEvent('a', big(3, 200_000));
    expect(huge).toMatch(/^a_\d+$/);
    expect(store.size).toBe(2);
    expect(store.keptBytes).toBeLessThan(1024);
    const { got } = await replay(store, first);
    expect(got.map((g) => g.message)).toEqual([note(2)]);
  });
});

describe('exposed resource URIs', () => {
  it('keep the plugin’s own URI verbatim and map back to exactly it, whatever it contains', () => {
    for (const own of ['note://a/one', 'file:///x y?q=1#f', 'hay://other/z', 'urn:isbn:123', 'a/b']) {
      const exposed = exposedUri('my-plugin', own);
      expect(exposed.startsWith('hay://my-plugin/')).toBe(true);
      expect(parseExposedUri(exposed)).toEqual({ pluginId: 'my-plugin', uri: own });
    }
  });

  it('are not read from strings of another form', () => {
    for (const s of ['note://a', 'hay://', 'hay://p', 'hay://p/', 'hay://UPPER/x', 'hay:///x', 'hay://-p/x'])
      expect(parseExposedUri(s)).toBeUndefined();
  });
});
