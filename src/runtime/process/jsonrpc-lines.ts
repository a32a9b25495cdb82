import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Most bytes of an unfinished line kept between chunks (the SDK ReadBuffer's default maximum). */
export const MAX_LINE_BYTES = 10 * 1024 * 1024;

const NEWLINE = 0x0a;

/**
 * Newline-delimited JSON-RPC from a byte stream, as the SDK's stdio framing reads it (a trailing `\r` is
 * dropped), without building a new Buffer per chunk: complete lines are cut from the chunk itself and
 * only an unfinished tail is kept. `push` returns the messages the chunk completed, in order, and the
 * errors of lines that were not JSON-RPC messages (those lines are skipped; the stream goes on).
 * Throws when an unfinished line exceeds `maxLineBytes`.
 */
export class JsonRpcLineReader {
  private tail: Buffer | undefined;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  push(chunk: Buffer): { messages: JSONRPCMessage[]; errors: Error[] } {
    const messages: JSONRPCMessage[] = [];
    const errors: Error[] = [];
    let data = chunk;
    if (this.tail) {
      data = Buffer.concat([this.tail, chunk]);
      this.tail = undefined;
    }
    let start = 0;
    for (;;) {
      const end = data.indexOf(NEWLINE, start);
      if (end < 0) break;
      const stop = end > start && data[end - 1] === 0x0d ? end - 1 : end;
      try {
        messages.push(parseJsonRpcMessage(data.toString('utf8', start, stop)));
      } catch (err) {
        errors.push(err instanceof Error ? err : new Error(String(err)));
      }
      start = end + 1;
    }
    if (start < data.length) {
      if (data.length - start > this.maxLineBytes) {
        this.tail = undefined;
        throw new Error(`a JSON-RPC line exceeded ${this.maxLineBytes} bytes`);
      }
      this.tail = start === 0 ? data : data.subarray(start);
    }
    return { messages, errors };
  }

  clear(): void {
    this.tail = undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
/** zod's `z.number().int()` accepts safe integers only. */
const isInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v);
const isId = (v: unknown): boolean => typeof v === 'string' || isInt(v);
const RELATED_TASK = 'io.modelcontextprotocol/related-task';
const onlyKeys = (o: Record<string, unknown>, allowed: readonly string[]): boolean => {
  for (const k in o) if (!allowed.includes(k)) return false;
  return true;
};
/**
 * `_meta` of params/result: an object whose progressToken, if present, is a string or an integer, and whose
 * related-task entry, if present, is an object with a string taskId.
 */
const metaOk = (holder: Record<string, unknown>): boolean => {
  const meta = holder._meta;
  if (meta === undefined) return true;
  if (!isObject(meta)) return false;
  if (meta.progressToken !== undefined && !isId(meta.progressToken)) return false;
  const task = meta[RELATED_TASK];
  return task === undefined || (isObject(task) && typeof task.taskId === 'string');
};

/**
 * One line as a JSON-RPC 2.0 message, accepting exactly what the SDK's JSONRPCMessageSchema accepts (a
 * request, notification, result or error response; no other top-level keys), so the host's transport need
 * not run that zod union on every message. The value is JSON.parse's own object. Throws on anything else.
 */
export function parseJsonRpcMessage(line: string): JSONRPCMessage {
  const v: unknown = JSON.parse(line);
  if (!isObject(v) || v.jsonrpc !== '2.0') throw new Error('not a JSON-RPC 2.0 message');
  if ('method' in v) {
    if (typeof v.method !== 'string') throw new Error('JSON-RPC method is not a string');
    if ('params' in v && v.params !== undefined && (!isObject(v.params) || !metaOk(v.params)))
      throw new Error('JSON-RPC params are not an object');
    if ('id' in v) {
      if (!isId(v.id) || !onlyKeys(v, ['jsonrpc', 'id', 'method', 'params']))
        throw new Error('invalid JSON-RPC request');
    } else if (!onlyKeys(v, ['jsonrpc', 'method', 'params']))
      throw new Error('invalid JSON-RPC notification');
    return v as unknown as JSONRPCMessage;
  }
  if ('result' in v) {
    if (!isId(v.id) || !isObject(v.result) || !metaOk(v.result) || !onlyKeys(v, ['jsonrpc', 'id', 'result']))
      throw new Error('invalid JSON-RPC response');
    return v as unknown as JSONRPCMessage;
  }
  if ('error' in v) {
    const e = v.error;
    if (
      ('id' in v && v.id !== undefined && !isId(v.id)) ||
      !isObject(e) ||
      !isInt(e.code) ||
      typeof e.message !== 'string' ||
      !onlyKeys(v, ['jsonrpc', 'id', 'error'])
    )
      throw new Error('invalid JSON-RPC error response');
    return v as unknown as JSONRPCMessage;
  }
  throw new Error('JSON-RPC message is neither a request, a notification nor a response');
}
