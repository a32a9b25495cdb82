import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { LookupFunction } from 'node:net';
import { WebSocket, type RawData } from 'ws';

const SUBPROTOCOL = 'mcp';

export interface WebSocketTransportOptions {
  headers?: Record<string, string>;
  /** Aborts the opening handshake. */
  signal?: AbortSignal;
  /** Largest accepted frame. Default 16 MiB. */
  maxPayloadBytes?: number;
  /** DNS lookup of the socket (the egress policy's checking resolver for tenant-directed URLs). */
  lookup?: LookupFunction;
}

/**
 * MCP client transport over a WebSocket (package `ws`; Node 20 has no global WebSocket): one JSON-RPC
 * message per text frame, subprotocol `mcp`, validated with the SDK's JSONRPCMessageSchema. `start()`
 * resolves when the socket is open and rejects if the handshake fails or is aborted. `onclose` fires once
 * when the socket closes for any reason; `close()` is idempotent.
 */
export class WsClientTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  private socket: WebSocket | undefined;
  private closed = false;

  constructor(
    private readonly url: URL,
    private readonly options: WebSocketTransportOptions = {},
  ) {}

  start(): Promise<void> {
    if (this.socket) throw new Error('WsClientTransport already started');
    const { signal } = this.options;
    signal?.throwIfAborted();
    const socket = new WebSocket(this.url, SUBPROTOCOL, {
      headers: this.options.headers ?? {},
      maxPayload: this.options.maxPayloadBytes ?? 16 * 1024 * 1024,
      ...(this.options.lookup ? { lookup: this.options.lookup } : {}),
    });
    this.socket = socket;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        socket.terminate();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('WebSocket connect aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('open', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      socket.once('unexpected-response', (_req, res) => {
        signal?.removeEventListener('abort', onAbort);
        socket.terminate();
        reject(new Error(`WebSocket upgrade refused with HTTP ${res.statusCode ?? 'error'}`));
      });
      socket.on('error', (err) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
        this.onerror?.(err);
      });
      socket.on('close', () => this.finish());
      socket.on('message', (data, isBinary) => this.receive(data, isBinary));
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN)
      return Promise.reject(new Error('WebSocket is not open'));
    return new Promise((resolve, reject) => {
      socket.send(JSON.stringify(message), (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    const socket = this.socket;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.close();
      const timer = setTimeout(() => socket.terminate(), 1_000);
      timer.unref();
      await closed;
      clearTimeout(timer);
    }
    this.finish();
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.onerror?.(new Error('WebSocket binary frame ignored: MCP messages are text frames'));
      return;
    }
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const text = buf.toString('utf8');
    let message: JSONRPCMessage;
    try {
      message = JSONRPCMessageSchema.parse(JSON.parse(text));
    } catch (err) {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.onmessage?.(message);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }
}
