import { getEventListeners } from 'node:events';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { McpConnectionFactory } from '../../src/runtime/client/connection-factory.js';
import { isolatingFetch, remoteTransportOrder, urlFor } from '../../src/runtime/client/remote-transports.js';
import type { ConnectionEnd } from '../../src/runtime/ports.js';
import { NoSandbox } from '../../src/runtime/process/no-sandbox.js';
import { ProcessManager } from '../../src/runtime/process/process-manager.js';
import { descendantPids, waitFor } from '../helpers/processes.js';
import { DEFAULT_LIMITS, FixedEnv, FixedRemote, remoteSpec } from '../fixtures/servers/factory-harness.js';
import { memoryLogger } from '../fixtures/servers/harness.js';
import { startRemoteServer, type RemoteServer } from '../fixtures/servers/remote-server.js';

const cleanups: (() => Promise<void>)[] = [];

async function setup(enabled: { http?: boolean; sse?: boolean; websocket?: boolean }) {
  const server: RemoteServer = await startRemoteServer(enabled);
  const { logger } = memoryLogger();
  const processes = new ProcessManager({
    logger,
    sandbox: new NoSandbox(),
    stopGraceMs: 100,
    killGraceMs: 100,
  });
  const factory = new McpConnectionFactory({
    logger,
    processes,
    env: new FixedEnv({}),
    remote: new FixedRemote(server.url, { 'x-plugin-token': 'tok-123' }),
    limits: DEFAULT_LIMITS,
    callTimeoutMs: 5_000,
  });
  cleanups.push(async () => {
    await processes.close();
    await server.close();
  });
  return { server, factory };
}

function textOf(result: { content: unknown[] }): string {
  return (result.content[0] as { text?: string } | undefined)?.text ?? '';
}

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

afterAll(() => {
  expect(descendantPids()).toEqual([]);
});

describe('McpConnectionFactory (remote)', () => {
  for (const kind of ['http', 'sse', 'websocket'] as const) {
    it(`connects over ${kind}, sends the endpoint headers and calls a tool`, async () => {
      const { server, factory } = await setup({ [kind]: true });
      const conn = await factory.connect('org-1', remoteSpec(kind), { timeoutMs: 5_000 });
      cleanups.unshift(() => conn.close());
      expect(conn.transport).toBe(kind);
      expect(conn.pid).toBeUndefined();
      expect((await conn.listTools()).map((t) => t.name)).toEqual(['echo', 'slow']);
      expect(textOf(await conn.callTool('echo', { message: `via ${kind}` }))).toBe(`via ${kind}`);
      await conn.ping();
      expect(await conn.usage?.()).toBeUndefined();
      expect(server.seenHeaders.length).toBeGreaterThan(0);
      expect(server.seenHeaders.every((h) => h['x-plugin-token'] === 'tok-123')).toBe(true);
      await conn.close();
      await conn.close();
    });
  }

  it('falls back from http to sse when the server does not speak Streamable HTTP', async () => {
    const { factory } = await setup({ sse: true });
    const conn = await factory.connect('org-1', remoteSpec('http|sse'), { timeoutMs: 5_000 });
    cleanups.unshift(() => conn.close());
    expect(conn.transport).toBe('sse');
    expect(textOf(await conn.callTool('echo', { message: 'fallback' }))).toBe('fallback');
  });

  it('fails with INSTANCE_FAILED naming every transport tried when none works', async () => {
    const { factory } = await setup({});
    const error = await factory
      .connect('org-1', remoteSpec('http|sse|websocket'), { timeoutMs: 5_000 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INSTANCE_FAILED' });
    expect((error as Error).message).toMatch(/http: .*; sse: .*; websocket: /);
  });

  it('reports the end once when the server drops a WebSocket session', async () => {
    const { server, factory } = await setup({ websocket: true });
    const conn = await factory.connect('org-1', remoteSpec('websocket'), { timeoutMs: 5_000 });
    cleanups.unshift(() => conn.close());
    const ends: ConnectionEnd[] = [];
    conn.onEnd((e) => ends.push(e));
    server.dropWebSockets();
    await waitFor(() => ends.length > 0, 'onEnd after the server dropped the socket');
    expect(ends).toEqual([{ kind: 'closed' }]);
    await expect(conn.callTool('echo', { message: 'x' })).rejects.toMatchObject({ code: 'INSTANCE_CRASHED' });
  });

  it('adds no lasting abort listeners to a long-lived caller signal', async () => {
    const { factory } = await setup({ http: true });
    const conn = await factory.connect('org-1', remoteSpec('http'), { timeoutMs: 5_000 });
    cleanups.unshift(() => conn.close());
    const callerSignal = new AbortController().signal;
    for (let i = 0; i < 30; i++) {
      expect(textOf(await conn.callTool('echo', { message: `m${i}` }, { signal: callerSignal }))).toBe(
        `m${i}`,
      );
    }
    expect(getEventListeners(callerSignal, 'abort').length).toBeLessThanOrEqual(1);
  });

  it('times out a slow remote tool with TimeoutError', async () => {
    const { factory } = await setup({ http: true });
    const conn = await factory.connect('org-1', remoteSpec('http'), { timeoutMs: 5_000 });
    cleanups.unshift(() => conn.close());
    await expect(conn.callTool('slow', { ms: 2_000 }, { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
  });
});

describe('remote transport helpers', () => {
  it('gives each fetch its own signal that follows the shared one, leaving no listener on it', async () => {
    const seen: (AbortSignal | null | undefined)[] = [];
    const wrapped = isolatingFetch(async (_url, init) => {
      seen.push(init?.signal);
      return new Response('ok');
    });
    const shared = new AbortController();
    await wrapped('http://x.test/', { signal: shared.signal });
    await wrapped('http://x.test/', { signal: shared.signal });
    expect(seen[0]).not.toBe(shared.signal);
    expect(seen[0]).not.toBe(seen[1]);
    expect(getEventListeners(shared.signal, 'abort')).toEqual([]);
    shared.abort();
    expect(seen.every((s) => s?.aborted)).toBe(true);
  });

  it('orders alternatives and drops stdio, unknown names and duplicates', () => {
    expect(remoteTransportOrder(undefined)).toEqual(['http']);
    expect(remoteTransportOrder('http|sse')).toEqual(['http', 'sse']);
    expect(remoteTransportOrder('stdio|websocket|bogus|websocket')).toEqual(['websocket']);
  });

  it('switches URL schemes to what the transport speaks', () => {
    expect(urlFor('websocket', 'https://x.test/mcp').href).toBe('wss://x.test/mcp');
    expect(urlFor('http', 'ws://x.test/mcp').href).toBe('http://x.test/mcp');
    expect(urlFor('sse', 'http://x.test/sse').href).toBe('http://x.test/sse');
  });
});
