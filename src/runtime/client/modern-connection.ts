import { Client, ProtocolError, type Transport } from '@modelcontextprotocol/client';
import { InstanceError, TimeoutError, ValidationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { CallOptions, CallToolResult, ConnectionEnd, PluginConnection, Tool } from '../ports.js';
import type { ManagedProcess } from '../process/managed-process.js';
import { abortReason, callScope, type CallScope } from './call-scope.js';
import { checkPluginResult, measureListedItems } from './result-check.js';
import { ConnectionEnds, errorText, pluginErrorText } from './connection-end.js';
import { HOST_CLIENT_INFO, type ResponseLimits } from './plugin-connection.js';

/** Upper bound on tools/list pages, against servers that never stop returning a cursor. */
const MAX_TOOL_PAGES = 1_000;

/** True when `err` says the server refused the 2025-11-25 `initialize` (it speaks only newer revisions). */
export function isUnsupportedProtocol(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/Unsupported protocol version/i.test(e.message) || (e as { code?: unknown }).code === -32022)
      return true;
  }
  return false;
}

/**
 * A PluginConnection to a local stdio plugin that speaks only MCP 2026-07-28 (stateless: `server/discover`,
 * the per-request envelope), over `@modelcontextprotocol/client` 2.x with version negotiation `auto`.
 * Used only when such a plugin refused the SDK 1.32 client's `initialize` (see McpConnectionFactory):
 * tools (listTools, callTool with progress and cancellation), ping, list_changed and the process's end.
 * Not offered to these plugins: resources, prompts and server-to-client requests (the 2026-07-28 era
 * has no push requests; input_required rounds are not relayed yet). Errors are HayErrors or the
 * caller's abort reason, as for McpPluginConnection.
 */
export class ModernPluginConnection implements PluginConnection {
  readonly transport = 'stdio' as const;
  private readonly client: Client;
  private readonly toolsListeners: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private opened = false;
  private readonly ends: ConnectionEnds;

  constructor(
    private readonly opts: {
      pluginId: string;
      logger: Logger;
      callTimeoutMs: number;
      process: ManagedProcess;
      limits?: ResponseLimits;
    },
  ) {
    this.ends = new ConnectionEnds(opts.logger);
    this.client = new Client({ ...HOST_CLIENT_INFO }, { versionNegotiation: { mode: 'auto' } });
    this.client.setNotificationHandler('notifications/tools/list_changed', () => {
      for (const l of this.toolsListeners) this.ends.safely(l);
    });
    this.client.onerror = (err) => opts.logger.debug({ err: err.message }, 'MCP transport error');
    void opts.process.exited.then((exit) => {
      if (this.closing || !this.opened) return;
      this.end({ kind: 'exited', code: exit.code, signal: exit.signal });
    });
  }

  get pid(): number | undefined {
    return this.opts.process.pid;
  }

  logLines(): string[] {
    return this.opts.process.logLines();
  }

  async open(transport: Transport, options: { signal?: AbortSignal; timeoutMs: number }): Promise<void> {
    const scope = callScope(options, options.timeoutMs);
    try {
      await this.client.connect(transport, { signal: scope.signal, timeout: scope.timeoutMs + 1_000 });
    } catch (err) {
      if (scope.callerAborted()) throw abortReason(options.signal);
      if (scope.timedOut())
        throw new TimeoutError(
          `Plugin ${this.opts.pluginId} did not answer server/discover within ${scope.timeoutMs} ms`,
        );
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${this.opts.pluginId} failed to start (MCP 2026-07-28): ${errorText(err)}`,
        err,
      );
    }
    this.opened = true;
  }

  async listTools(options?: CallOptions): Promise<Tool[]> {
    const scope = this.scope(options);
    const tools: Tool[] = [];
    let listBytes = 0;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const result = await this.request(scope, 'list its tools', () =>
        this.client.listTools(cursor === undefined ? {} : { cursor }, {
          signal: scope.signal,
          timeout: scope.timeoutMs + 1_000,
        }),
      );
      tools.push(...(result.tools as Tool[]));
      listBytes += measureListedItems(this.opts.pluginId, result.tools, 'tools/list');
      const limits = this.opts.limits;
      if (limits && (tools.length > limits.maxTools || listBytes > limits.maxToolsListBytes))
        throw new InstanceError(
          'INSTANCE_FAILED',
          `Plugin ${this.opts.pluginId} lists more tools than allowed (limits HAY_MAX_TOOLS, HAY_MAX_TOOLS_LIST_BYTES)`,
        );
      cursor = result.nextCursor;
      if (cursor === undefined) return tools;
    }
    throw new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${this.opts.pluginId} returned a tools/list cursor that never ends`,
    );
  }

  async callTool(
    name: string,
    args: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<CallToolResult> {
    const scope = this.scope(options);
    const result = await this.request(scope, `run tool "${name}"`, () =>
      this.client.callTool(
        { name, arguments: args, ...(options?.meta ? { _meta: options.meta } : {}) },
        {
          signal: scope.signal,
          timeout: scope.timeoutMs + 1_000,
          ...(options?.onProgress ? { onprogress: options.onProgress } : {}),
        },
      ),
    );
    checkPluginResult(this.opts.pluginId, result, `tool "${name}"`, this.opts.limits?.maxResultBytes);
    return result as CallToolResult;
  }

  async ping(options?: CallOptions): Promise<void> {
    const scope = this.scope(options);
    await this.request(scope, 'answer ping', () =>
      this.client.ping({ signal: scope.signal, timeout: scope.timeoutMs + 1_000 }),
    );
  }

  onEnd(listener: (end: ConnectionEnd) => void): void {
    this.ends.onEnd(listener);
  }

  onToolsChanged(listener: () => void): void {
    this.toolsListeners.push(listener);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.client.close().catch(() => undefined);
      await this.opts.process.stop();
    })();
    return this.closing;
  }

  private scope(options: CallOptions | undefined): CallScope {
    if (this.closing)
      throw new InstanceError('INSTANCE_FAILED', `The connection to plugin ${this.opts.pluginId} is closed`);
    if (this.ends.ended)
      throw new InstanceError('INSTANCE_CRASHED', `Plugin ${this.opts.pluginId} is not running`);
    return callScope(options, this.opts.callTimeoutMs);
  }

  private async request<T>(scope: CallScope, what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      const plugin = `Plugin ${this.opts.pluginId}`;
      if (scope.callerAborted()) throw abortReason(scope.signal);
      if (scope.timedOut()) throw new TimeoutError(`${plugin} did not ${what} within ${scope.timeoutMs} ms`);
      if (this.ends.ended || this.opts.process.currentState === 'stopped')
        throw new InstanceError('INSTANCE_CRASHED', `${plugin} stopped while it was asked to ${what}`);
      if (err instanceof ProtocolError && err.code === -32602)
        throw new ValidationError(
          'ARGUMENTS_INVALID',
          `${plugin} rejected the request to ${what}: ${pluginErrorText(err.message)}`,
        );
      throw new InstanceError(
        'INSTANCE_FAILED',
        `${plugin} failed to ${what}: ${pluginErrorText(errorText(err))}`,
      );
    }
  }

  private end(end: ConnectionEnd): void {
    if (!this.closing) this.ends.end(end);
  }
}
