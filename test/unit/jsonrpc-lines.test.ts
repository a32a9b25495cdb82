import { JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import {
  INVALID_ANSWER_CODE,
  InvalidJsonRpcLineError,
  JsonRpcLineReader,
  parseJsonRpcMessage,
} from '../../src/runtime/process/jsonrpc-lines.js';

/** Candidates on every edge of JSONRPCMessageSchema; the hand check must agree with the zod union on each. */
const CASES: unknown[] = [
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } },
  { jsonrpc: '2.0', id: 'a', method: 'ping' },
  { jsonrpc: '2.0', id: 1.5, method: 'ping' },
  { jsonrpc: '2.0', id: null, method: 'ping' },
  { jsonrpc: '2.0', id: 2 ** 53 + 2, method: 'ping' },
  { jsonrpc: '2.0', id: 1, method: 7 },
  { jsonrpc: '2.0', id: 1, method: 'x', params: [] },
  { jsonrpc: '2.0', id: 1, method: 'x', params: null },
  { jsonrpc: '2.0', id: 1, method: 'x', params: 'p' },
  { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: { progressToken: 3 } } },
  { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: { progressToken: 3.5 } } },
  { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: { progressToken: true } } },
  { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: 'm' } },
  {
    jsonrpc: '2.0',
    id: 1,
    method: 'x',
    params: { _meta: { 'io.modelcontextprotocol/related-task': { taskId: 't' } } },
  },
  {
    jsonrpc: '2.0',
    id: 1,
    method: 'x',
    params: { _meta: { 'io.modelcontextprotocol/related-task': { taskId: 1 } } },
  },
  { jsonrpc: '2.0', id: 1, method: 'x', extra: true },
  { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 2 } },
  { jsonrpc: '2.0', method: 'notifications/x', extra: 1 },
  { jsonrpc: '2.0', method: 'notifications/x', params: { _meta: { progressToken: {} } } },
  { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'hi' }] } },
  { jsonrpc: '2.0', id: 1, result: {} },
  { jsonrpc: '2.0', id: 1, result: [] },
  { jsonrpc: '2.0', id: 1, result: null },
  { jsonrpc: '2.0', id: 1, result: 'r' },
  { jsonrpc: '2.0', result: {} },
  { jsonrpc: '2.0', id: 1, result: { _meta: { progressToken: 'p' } } },
  { jsonrpc: '2.0', id: 1, result: { _meta: [] } },
  { jsonrpc: '2.0', id: 1, result: {}, extra: 1 },
  { jsonrpc: '2.0', id: 1, result: {}, error: { code: 1, message: 'm' } },
  { jsonrpc: '2.0', id: 1, method: 'x', result: {} },
  { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'Method not found' } },
  { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error', data: { any: 1 } } },
  { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } },
  { jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'm' } },
  { jsonrpc: '2.0', id: 1, error: { code: 1 } },
  { jsonrpc: '2.0', id: 1, error: { message: 'm' } },
  { jsonrpc: '2.0', id: 1, error: 'e' },
  { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'm', extra: 1 } },
  { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'm' }, extra: 1 },
  { jsonrpc: '1.0', id: 1, result: {} },
  { id: 1, result: {} },
  { jsonrpc: '2.0', id: 1 },
  { jsonrpc: '2.0' },
  [],
  [{ jsonrpc: '2.0', id: 1, result: {} }],
  null,
  42,
  'text',
];

describe('parseJsonRpcMessage', () => {
  it.each(CASES.map((c) => [JSON.stringify(c), c]))(
    'is what JSONRPCMessageSchema makes of it: %s',
    (line, value) => {
      const expected = JSONRPCMessageSchema.safeParse(value).success;
      let accepted: boolean;
      try {
        expect(parseJsonRpcMessage(line)).toEqual(JSONRPCMessageSchema.parse(value));
        accepted = true;
      } catch (err) {
        if (!(err instanceof Error) || err.name === 'AssertionError') throw err;
        accepted = false;
      }
      expect(accepted).toBe(expected);
    },
  );

  it('throws on a line that is not JSON', () => {
    expect(() => parseJsonRpcMessage('{not json')).toThrow();
  });
});

describe('JsonRpcLineReader', () => {
  const line = (id: number) => `${JSON.stringify({ jsonrpc: '2.0', id, result: { n: id } })}\n`;

  it('reads messages split anywhere across chunks, several per chunk, CRLF too', () => {
    const text = line(1) + line(2) + line(3).replace('\n', '\r\n') + line(4);
    const bytes = Buffer.from(text);
    for (const size of [1, 2, 7, 50, bytes.length]) {
      const reader = new JsonRpcLineReader();
      const ids: unknown[] = [];
      for (let i = 0; i < bytes.length; i += size)
        for (const m of reader.push(bytes.subarray(i, i + size)).messages)
          ids.push((m as { id: unknown }).id);
      expect(ids).toEqual([1, 2, 3, 4]);
    }
  });

  it('keeps multi-byte characters split between chunks intact', () => {
    const bytes = Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { t: 'grüße ✓' } })}\n`);
    const reader = new JsonRpcLineReader();
    const cut = bytes.indexOf(0xc3) + 1;
    expect(reader.push(bytes.subarray(0, cut)).messages).toEqual([]);
    const [m] = reader.push(bytes.subarray(cut)).messages;
    expect(m).toEqual({ jsonrpc: '2.0', id: 1, result: { t: 'grüße ✓' } });
  });

  it('reports a bad line as an error and goes on with the next', () => {
    const reader = new JsonRpcLineReader();
    const out = reader.push(Buffer.from(`garbage\n{"jsonrpc":"2.0","method":7}\n${line(5)}`));
    expect(out.errors).toHaveLength(2);
    expect(out.messages).toEqual([{ jsonrpc: '2.0', id: 5, result: { n: 5 } }]);
  });

  it('turns an invalid answer to a request into a JSON-RPC error for its id, in its place', () => {
    const reader = new JsonRpcLineReader();
    const bad = [
      '{"jsonrpc":"2.0","id":1}',
      '{"jsonrpc":"2.0","id":"s","error":{"code":-32000,"message":42}}',
      '{"jsonrpc":"2.0","id":3,"result":"not an object"}',
      '{"jsonrpc":"2.0","id":4,"error":{"code":1.5,"message":"m","data":{"stack":"at /host/x.js"}}}',
    ];
    const out = reader.push(Buffer.from(`${bad.join('\n')}\n${line(5)}`));
    expect(out.errors).toHaveLength(4);
    expect(out.errors.every((e) => e instanceof InvalidJsonRpcLineError)).toBe(true);
    expect(out.messages.map((m) => (m as { id: unknown }).id)).toEqual([1, 's', 3, 4, 5]);
    for (const m of out.messages.slice(0, 4))
      expect(m).toMatchObject({ error: { code: INVALID_ANSWER_CODE, message: /invalid JSON-RPC response/ } });
    // nothing of what the plugin put in its answer is carried on
    expect(JSON.stringify(out.messages)).not.toContain('/host/x.js');
  });

  it('gives no answer for a request, a notification, an id that cannot be a request of ours, or a batch', () => {
    const reader = new JsonRpcLineReader();
    const lines = [
      '{"jsonrpc":"2.0","id":1,"method":7}',
      '{"jsonrpc":"2.0","method":"x","params":"p"}',
      '{"jsonrpc":"2.0","id":1.5,"result":{}}',
      '{"jsonrpc":"2.0","id":null,"result":"r"}',
      '{"jsonrpc":"2.0","id":{"a":1},"result":{}}',
      '[{"jsonrpc":"2.0","id":1,"result":{}}]',
      '42',
    ];
    const out = reader.push(Buffer.from(`${lines.join('\n')}\n`));
    expect(out.errors).toHaveLength(lines.length);
    expect(out.messages).toEqual([]);
  });

  it('refuses an unfinished line longer than its bound', () => {
    const reader = new JsonRpcLineReader(16);
    expect(() => reader.push(Buffer.from('{"jsonrpc":"2.0","id":1,'))).toThrow(/exceeded 16 bytes/);
    expect(reader.push(Buffer.from(line(6))).messages).toHaveLength(1);
  });
});
