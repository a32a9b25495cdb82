import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcLineReader } from './jsonrpc-lines.js';
import type { ManagedProcess } from './managed-process.js';

/** What the transport reports (onerror) when it closes because the plugin does not read its stdin. */
export class StdinBacklogError extends Error {}

/** Default most bytes written to a plugin's stdin and not yet taken by it (config maxStdinBacklogBytes). */
export const MAX_STDIN_BACKLOG_BYTES = 32 * 1024 * 1024;

/**
 * MCP client transport over a ManagedProcess's stdin/stdout: newline-delimited JSON-RPC, the SDK's stdio
 * framing (one `JSON.stringify(message) + "\n"` per message; lines cut by JsonRpcLineReader and validated
 * against the SDK's own JSONRPCMessageSchema). A line that is not a JSON-RPC message goes to `onerror`;
 * one meant as the answer to a request also reaches `onmessage` as a JSON-RPC error for that id (see
 * JsonRpcLineReader), so the request fails at once instead of waiting for its timeout. Messages sent
 * during one event-loop turn are
 * written to stdin together in ONE write at the end of that turn (setImmediate), so 100 calls in flight
 * cost one pipe write per turn, not one per call; `send` resolves when its write completed. `onclose`
 * fires once: when the process's stdout closes, when the process and its group are gone, or on `close()`.
 * `close()` also stops the process (escalating) and resolves when it is gone; idempotent.
 * Bytes written but not yet read by the plugin stay in host memory: when a write finds earlier ones still
 * waiting and would take them past `maxBacklogBytes`, the plugin is taken as not reading its stdin: the
 * write's senders are rejected, `onerror` gets the reason and the transport closes (stopping the process).
 */
export class ProcessStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  private readonly reader = new JsonRpcLineReader();
  private started = false;
  private closed = false;
  /** Serialized messages of this turn not yet written, with their senders. */
  private pending: string[] = [];
  private pendingSenders: { resolve: () => void; reject: (err: Error) => void }[] = [];

  private readonly maxBacklogBytes: number;

  constructor(
    private readonly proc: ManagedProcess,
    options: { maxBacklogBytes?: number } = {},
  ) {
    this.maxBacklogBytes = options.maxBacklogBytes ?? MAX_STDIN_BACKLOG_BYTES;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('ProcessStdioTransport already started');
    this.started = true;
    this.proc.stdout.on('data', this.onData);
    // After the child exits its whole group is stopped, so stdout closes even if a grandchild held it.
    this.proc.stdout.once('close', this.finish);
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.proc.stdin;
    if (this.closed || stdin.destroyed || !stdin.writable) {
      return Promise.reject(new Error('Plugin process is not running'));
    }
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(this.flush);
      this.pending.push(JSON.stringify(message) + '\n');
      this.pendingSenders.push({ resolve, reject });
    });
  }

  /** Writes what this turn's sends queued, in order, as one write. */
  private readonly flush = (): void => {
    const text = this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join('');
    const senders = this.pendingSenders;
    this.pending = [];
    this.pendingSenders = [];
    const stdin = this.proc.stdin;
    if (this.closed || stdin.destroyed || !stdin.writable) {
      const err = new Error('Plugin process is not running');
      for (const s of senders) s.reject(err);
      return;
    }
    const waiting = stdin.writableLength;
    if (waiting > 0 && waiting + Buffer.byteLength(text) > this.maxBacklogBytes) {
      const err = new StdinBacklogError(
        `Plugin process does not read its stdin: ${waiting} bytes are still waiting for it (limit HAY_MAX_STDIN_BACKLOG_BYTES, ${this.maxBacklogBytes})`,
      );
      for (const s of senders) s.reject(err);
      this.onerror?.(err);
      void this.close();
      return;
    }
    stdin.write(text, (err) => {
      for (const s of senders) {
        if (err) s.reject(err);
        else s.resolve();
      }
    });
  };

  async close(): Promise<void> {
    this.finish();
    await this.proc.stop();
  }

  private readonly onData = (chunk: Buffer): void => {
    let read: ReturnType<JsonRpcLineReader['push']>;
    try {
      read = this.reader.push(chunk);
    } catch (err) {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)));
      void this.close();
      return;
    }
    for (const err of read.errors) this.onerror?.(err);
    for (const message of read.messages) this.onmessage?.(message);
  };

  private readonly finish = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.proc.stdout.off('data', this.onData);
    this.reader.clear();
    this.onclose?.();
  };
}
