import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Most bytes of an unfinished line kept between chunks (the SDK ReadBuffer's default maximum). */
export const MAX_LINE_BYTES = 10 * 1024 * 1024;

const NEWLINE = 0x0a;

/** JSON-RPC error code of the answer put in place of a plugin's invalid answer to a request. */
export const INVALID_ANSWER_CODE = -32603;

/** The message of that answer. */
export const INVALID_ANSWER_MESSAGE =
  'the plugin answered with an invalid JSON-RPC response (an answer needs a "result" object, or an "error" with an integer "code" and a string "message")';

/**
 * Newline-delimited JSON-RPC from a byte stream, as the SDK's stdio framing reads it (a trailing `\r` is
 * dropped), without building a new Buffer per chunk: complete lines are cut from the chunk itself and
 * only an unfinished tail is kept. `push` returns the messages the chunk completed, in order, and the
 * errors of lines that were not JSON-RPC messages (those lines are skipped; the stream goes on). A line
 * meant as the answer to a request but invalid (InvalidJsonRpcLineError with a responseId) also gives, in
 * its place among the messages, a JSON-RPC error for that id (INVALID_ANSWER_CODE), so the request it
 * answers fails at once. Throws when an unfinished line exceeds `maxLineBytes`.
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
        if (err instanceof InvalidJsonRpcLineError && err.responseId !== undefined)
          messages.push({
            jsonrpc: '2.0',
            id: err.responseId,
            error: { code: INVALID_ANSWER_CODE, message: INVALID_ANSWER_MESSAGE },
          });
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
 * A line that is JSON but no JSON-RPC 2.0 message. `responseId`: set when it has the id of a request
 * (a string or an integer) and no `method`, i.e. it was meant as the answer to that request.
 */
export class InvalidJsonRpcLineError extends Error {
  constructor(
    message: string,
    readonly responseId: string | number | undefined,
  ) {
    super(message);
    this.name = 'InvalidJsonRpcLineError';
  }
}

/**
 * One line as a JSON-RPC 2.0 message, validated as the SDK's `deserializeMessage` does (JSON.parse, then
 * its JSONRPCMessageSchema). Throws a SyntaxError for a line that is not JSON, InvalidJsonRpcLineError
 * for JSON that is no JSON-RPC message.
 */
export function parseJsonRpcMessage(line: string): JSONRPCMessage {
  const value: unknown = JSON.parse(line);
  const parsed = JSONRPCMessageSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new InvalidJsonRpcLineError(
    `not a JSON-RPC 2.0 message: ${parsed.error.message.slice(0, 500)}`,
    answeredId(value),
  );
}

function answeredId(value: unknown): string | number | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || 'method' in value)
    return undefined;
  const id = (value as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? id : undefined;
}
