import { deserializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
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

/**
 * One line as a JSON-RPC 2.0 message, validated by the SDK itself (`deserializeMessage`: JSON.parse, then
 * its JSONRPCMessageSchema). Throws on anything else.
 */
export function parseJsonRpcMessage(line: string): JSONRPCMessage {
  return deserializeMessage(line);
}
