import { PassThrough, Writable } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import type { ManagedProcess } from '../../src/runtime/process/managed-process.js';
import { ProcessStdioTransport } from '../../src/runtime/process/stdio-transport.js';

function fakeProcess() {
  const writes: string[] = [];
  const stdin = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk.toString('utf8'));
      cb();
    },
  });
  const stdout = new PassThrough();
  let stopped = 0;
  const proc = {
    stdin,
    stdout,
    stop: async () => {
      stopped++;
      stdout.end();
    },
  } as unknown as ManagedProcess;
  return { proc, writes, stdout, stopped: () => stopped };
}

const request = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, method: 'ping' });

describe('ProcessStdioTransport', () => {
  it('writes the messages of one event-loop turn as one write, in order, and resolves every send', async () => {
    const { proc, writes } = fakeProcess();
    const t = new ProcessStdioTransport(proc);
    await t.start();
    await Promise.all([t.send(request(1)), t.send(request(2)), t.send(request(3))]);
    expect(writes).toEqual([[1, 2, 3].map((id) => `${JSON.stringify(request(id))}\n`).join('')]);
    await t.send(request(4));
    expect(writes).toHaveLength(2);
    expect(writes[1]).toBe(`${JSON.stringify(request(4))}\n`);
    await t.close();
  });

  it('hands complete lines to onmessage, reports bad lines to onerror, and rejects sends once closed', async () => {
    const { proc, stdout, stopped } = fakeProcess();
    const t = new ProcessStdioTransport(proc);
    const got: JSONRPCMessage[] = [];
    const errors: Error[] = [];
    let closed = 0;
    t.onmessage = (m) => got.push(m);
    t.onerror = (e) => errors.push(e);
    t.onclose = () => closed++;
    await t.start();
    stdout.write('{"jsonrpc":"2.0","id":1,"res');
    stdout.write('ult":{}}\nnot json\n{"jsonrpc":"2.0","method":"notifications/x"}\n');
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([
      { jsonrpc: '2.0', id: 1, result: {} },
      { jsonrpc: '2.0', method: 'notifications/x' },
    ]);
    expect(errors).toHaveLength(1);
    const pending = t.send(request(9));
    await t.close();
    await expect(pending).rejects.toThrow(/not running/);
    await expect(t.send(request(10))).rejects.toThrow(/not running/);
    expect(closed).toBe(1);
    expect(stopped()).toBe(1);
  });
});
