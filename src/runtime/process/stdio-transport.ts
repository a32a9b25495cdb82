import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ManagedProcess } from './managed-process.js';

/**
 * MCP client transport over a ManagedProcess's stdin/stdout (newline-delimited JSON-RPC, framed by the
 * SDK's ReadBuffer/serializeMessage). `onclose` fires once: when the process's stdout closes, when the
 * process and its group are gone, or on `close()`. `close()` also stops the process (escalating) and
 * resolves when it is gone; idempotent.
 */
export class ProcessStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  private readonly readBuffer = new ReadBuffer();
  private started = false;
  private closed = false;

  constructor(private readonly proc: ManagedProcess) {}

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
      stdin.write(serializeMessage(message), (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    this.finish();
    await this.proc.stop();
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.readBuffer.append(chunk);
    } catch (err) {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)));
      void this.close();
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.readBuffer.readMessage();
      } catch (err) {
        this.onerror?.(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (message === null) break;
      this.onmessage?.(message);
    }
  };

  private readonly finish = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.proc.stdout.off('data', this.onData);
    this.readBuffer.clear();
    this.onclose?.();
  };
}
