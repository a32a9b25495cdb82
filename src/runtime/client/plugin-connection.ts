import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolResultSchema,
  CompleteResultSchema,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  EmptyResultSchema,
  ErrorCode,
  GetPromptResultSchema,
  ListPromptsResultSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesResultSchema,
  ListRootsRequestSchema,
  ListToolsResultSchema,
  LoggingMessageNotificationSchema,
  McpError,
  PromptListChangedNotificationSchema,
  ReadResourceResultSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { EgressError, HayError, InstanceError, TimeoutError, ValidationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type {
  CallOptions,
  CallToolResult,
  CompleteResult,
  CompletionRequest,
  ConnectionEnd,
  GetPromptResult,
  PluginConnection,
  PluginServerRequest,
  ReadResourceResult,
  ServerExtras,
  Tool,
} from '../ports.js';
import type { ManagedProcess } from '../process/managed-process.js';
import { StdinBacklogError } from '../process/stdio-transport.js';
import { groupUsage } from '../process/proc-stats.js';
import { abortReason, callScope, type CallScope } from './call-scope.js';
import { ConnectionEnds, errorText, pluginErrorText } from './connection-end.js';
import { checkPluginResult, measureListedItems } from './result-check.js';
import { DEFAULT_ROOTS_SETTLE_MS, type ClientRoot } from './roots.js';

export const HOST_CLIENT_INFO = { name: 'hay-host', version: '0.1.0' } as const;

/** Upper bound on tools/list pages, against servers that never stop returning a cursor. */
const MAX_TOOL_PAGES = 1_000;
/** How long a failed call waits for the process exit status to name it in the error. */
const EXIT_STATUS_WAIT_MS = 2_000;
/** How long a failed start waits for the rest of the process's stderr (its last lines go in the error). */
const STDERR_CLOSE_WAIT_MS = 500;
/** JSON-RPC error code of the answers failRequests() hands the SDK in place of a server's (never sent on). */
const HOST_FAILED_CODE = -32099;

export type TransportKind = PluginConnection['transport'];

export interface McpPluginConnectionOptions {
  pluginId: string;
  transport: TransportKind;
  logger: Logger;
  /** Timeout of calls that pass no timeoutMs. */
  callTimeoutMs: number;
  /** The local process behind a stdio transport. */
  process?: ManagedProcess;
  /**
   * Roots offered to the server: set = roots/list is answered with exactly these. Unset = roots/list is
   * forwarded to the call in flight (see the class comment), and answers no roots outside a call.
   */
  roots?: readonly ClientRoot[];
  /** Wait after the server's first roots/list was answered at open(). Default DEFAULT_ROOTS_SETTLE_MS. */
  rootsSettleMs?: number;
  /** Runs at the end of close() (e.g. drops the egress-guarded sockets of a remote connection). */
  onClose?: () => Promise<void>;
  /** Remote OAuth: the error for a request the server refused for lack of (enough) authorization. */
  unauthorizedError?: () => Error;
  /** Bounds on what the server may answer (approximate bytes, see approxBytes); unset: unbounded. */
  limits?: ResponseLimits;
}

/** Caps on a server's answers, each refused with an error naming the limit's variable. */
export interface ResponseLimits {
  /** One tools/call result (HAY_MAX_TOOL_RESULT_BYTES). */
  maxResultBytes: number;
  /** Tools in tools/list, all pages together (HAY_MAX_TOOLS). */
  maxTools: number;
  /** Bytes of tools/list, all pages together (HAY_MAX_TOOLS_LIST_BYTES). */
  maxToolsListBytes: number;
}

function describeExit(exit: { code: number | null; signal: string | null } | undefined): string {
  if (!exit) return 'stopped responding';
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code ?? 'unknown'}`;
}

function timeoutPromise<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    void promise.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

/**
 * Contract: a response is dispatched after the notifications that arrived before it. SDK 1.x dispatches
 * notifications one microtask late but responses at once, so progress read in the same chunk as the
 * result found its handler already removed ("unknown token") and was lost.
 */
function deferResponses(transport: Transport): void {
  const dispatch = transport.onmessage;
  if (!dispatch) return;
  transport.onmessage = (message, extra) => {
    if ('id' in message && !('method' in message))
      void Promise.resolve().then(() => dispatch(message, extra));
    else dispatch(message, extra);
  };
}

/**
 * A PluginConnection over the MCP SDK Client. Every request runs under a fresh per-request signal (the
 * caller's signal + the timeout), so the SDK's per-request abort listeners never pile up on a long-lived
 * signal. Errors thrown to callers are HayErrors (TimeoutError, InstanceError, ValidationError), or the
 * caller's own abort reason when the caller aborted.
 *
 * Server-to-client traffic: the client declares `sampling`, `elicitation` and `roots`. A plugin's
 * sampling or elicitation request, its roots/list (when the host offers no roots of its own) and its log
 * notifications go to the one tools/call in flight on this connection (its `onServerRequest` / `onLog`):
 * a 2025-11-25 stdio message names no request it belongs to, so with no call or several calls in flight
 * the request is refused (roots/list outside a call answers no roots) and the log line is dropped, never
 * guessed. A call without `onServerRequest` refuses with an error naming why.
 */
export class McpPluginConnection implements PluginConnection {
  readonly transport: TransportKind;
  private readonly client: Client;
  private readonly ends: ConnectionEnds;
  private readonly toolsListeners: (() => void)[] = [];
  private readonly extrasListeners: (() => void)[] = [];
  private readonly updatedListeners: ((uri: string, forOrgId?: string) => void)[] = [];
  /** Options of the tools/call requests in flight (see the class comment). */
  private readonly calls = new Set<CallOptions>();
  private closing: Promise<void> | undefined;
  /**
   * The transport closed (set before the SDK fails the pending requests). Only then is an McpError of
   * code ConnectionClosed (-32000) the connection's end: a plugin may answer with that code itself.
   */
  private transportClosed = false;
  private opened = false;
  /** Set when the transport closed because the plugin stopped reading its stdin (StdinBacklogError). */
  private cutOff: string | undefined;
  private rootsListed = false;
  private transportRef: Transport | undefined;
  /** Errors of requests failed by failRequests(), by the key in their injected answer's data. */
  private readonly failed = new Map<number, HayError>();
  private failedSeq = 0;
  /** Set when the whole session was failed by failRequests(): every pending and later request gets it. */
  private fatal: HayError | undefined;

  constructor(private readonly opts: McpPluginConnectionOptions) {
    this.transport = opts.transport;
    this.ends = new ConnectionEnds(opts.logger);
    const roots = opts.roots;
    this.client = new Client(
      { ...HOST_CLIENT_INFO },
      { capabilities: { roots: { listChanged: false }, sampling: {}, elicitation: {} } },
    );
    this.client.setRequestHandler(ListRootsRequestSchema, async (_request, extra) => {
      if (roots) {
        this.rootsListed = true;
        return { roots: roots.map((r) => ({ ...r })) };
      }
      if (this.calls.size === 0) return { roots: [] };
      return (await this.relay({ method: 'roots/list', params: {} }, extra.signal)) as {
        roots: { uri: string; name?: string }[];
      };
    });
    this.client.setRequestHandler(
      CreateMessageRequestSchema,
      async (request, extra) =>
        (await this.relay(
          { method: 'sampling/createMessage', params: request.params },
          extra.signal,
        )) as never,
    );
    this.client.setRequestHandler(
      ElicitRequestSchema,
      async (request, extra) =>
        (await this.relay({ method: 'elicitation/create', params: request.params }, extra.signal)) as never,
    );
    this.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      const call = this.calls.size === 1 ? [...this.calls][0] : undefined;
      if (call?.onLog)
        this.safely(() =>
          call.onLog?.({
            level: n.params.level,
            data: n.params.data,
            ...(n.params.logger !== undefined ? { logger: n.params.logger } : {}),
          }),
        );
    });
    this.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      for (const listener of this.toolsListeners) this.safely(listener);
    });
    const extrasChanged = () => {
      for (const listener of this.extrasListeners) this.safely(listener);
    };
    this.client.setNotificationHandler(ResourceListChangedNotificationSchema, extrasChanged);
    this.client.setNotificationHandler(PromptListChangedNotificationSchema, extrasChanged);
    this.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      const forOrg = n.params._meta?.['hay/orgId'];
      for (const listener of this.updatedListeners)
        this.safely(() => listener(n.params.uri, typeof forOrg === 'string' ? forOrg : undefined));
    });
    this.client.onerror = (err) => {
      if (err instanceof StdinBacklogError) this.cutOff = err.message;
      opts.logger.debug({ err: err.message }, 'MCP transport error');
    };
    this.client.onclose = () => this.onTransportClosed();
    const proc = opts.process;
    if (proc) {
      void proc.exited.then(async (exit) => {
        if (this.closing || !this.opened) return;
        const limit = await proc.limitReason().catch(() => undefined);
        // stopped by the host for not reading its stdin: that, not the exit code, is why calls failed
        if (this.cutOff !== undefined && !limit) this.end({ kind: 'error', message: this.cutOff });
        else this.end({ kind: 'exited', code: exit.code, signal: exit.signal, ...(limit ? { limit } : {}) });
      });
    }
  }

  get pid(): number | undefined {
    return this.opts.process?.pid;
  }

  logLines(): string[] {
    return this.opts.process?.logLines() ?? [];
  }

  /**
   * Connects `transport` and completes MCP initialize within `timeoutMs` (roots settling included, see
   * settleRoots). Rejects with TimeoutError, the caller's abort reason, or InstanceError('INSTANCE_FAILED');
   * the caller closes the connection then.
   */
  async open(transport: Transport, options: { signal?: AbortSignal; timeoutMs: number }): Promise<void> {
    const scope = callScope(options, options.timeoutMs);
    try {
      this.transportRef = transport;
      await this.client.connect(transport, { signal: scope.signal, timeout: scope.timeoutMs + 1_000 });
      deferResponses(transport);
      if (this.opts.roots) await this.settleRoots(scope);
    } catch (err) {
      if (scope.callerAborted()) throw abortReason(options.signal);
      if (scope.timedOut()) {
        throw new TimeoutError(
          `Plugin ${this.opts.pluginId} did not complete MCP initialize within ${scope.timeoutMs} ms`,
        );
      }
      if (err instanceof EgressError) throw err;
      const exit = this.opts.process
        ? await timeoutPromise(this.opts.process.exited, EXIT_STATUS_WAIT_MS)
        : undefined;
      let what = exit ? `its process ${describeExit(exit)} before completing MCP initialize` : errorText(err);
      if (this.opts.process) {
        await timeoutPromise(this.opts.process.stderrClosed, STDERR_CLOSE_WAIT_MS);
        const lines = this.opts.process.stderrLines();
        if (lines.length > 0) what += `; its last stderr lines: ${lines.join(' | ')}`;
      }
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${this.opts.pluginId} failed to start: ${what}`,
        err,
      );
    }
    this.opened = true;
  }

  /**
   * Contract, for connections that offer roots: a server that asks roots/list when it receives
   * `notifications/initialized` (as server-filesystem does) has sent that request before it answers a ping
   * sent afterwards, and denies every call until it has applied the answer. So open() sends one ping; if
   * roots/list was asked by then (handled and answered within one event-loop turn after the ping answer),
   * it pings again (the server has read the answer) and waits rootsSettleMs more (the server applies roots asynchronously, e.g. realpath + stat),
   * so the first tool call after open() sees the roots. A server that does not ask costs one ping round trip;
   * one without ping support is not waited for. Best effort: a server that takes longer than rootsSettleMs
   * to apply roots may still deny a call made right after open().
   */
  private async settleRoots(scope: CallScope): Promise<void> {
    const ping = (): Promise<unknown> =>
      this.client.request({ method: 'ping' }, EmptyResultSchema, {
        signal: scope.signal,
        timeout: scope.timeoutMs + 1_000,
      });
    try {
      await ping();
    } catch (err) {
      if (err instanceof McpError && err.code === Number(ErrorCode.MethodNotFound)) return;
      throw err;
    }
    // A roots/list request read together with the ping answer reaches the handler only after some
    // microtasks, and the SDK writes the answer after the handler's promise settles: let both happen.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!this.rootsListed) return;
    await ping();
    await sleep(this.opts.rootsSettleMs ?? DEFAULT_ROOTS_SETTLE_MS, undefined, {
      signal: scope.signal,
      ref: false,
    });
  }

  async listTools(options?: CallOptions): Promise<Tool[]> {
    const scope = this.scope(options);
    const tools: Tool[] = [];
    const seen = new Set<string>();
    let listBytes = 0;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const result = await this.request(scope, 'list its tools', () =>
        this.client.request(
          { method: 'tools/list', params: cursor === undefined ? {} : { cursor } },
          ListToolsResultSchema,
          { signal: scope.signal, timeout: scope.timeoutMs + 1_000 },
        ),
      );
      tools.push(...result.tools);
      const pageBytes = measureListedItems(this.opts.pluginId, result.tools, 'tools/list');
      const limits = this.opts.limits;
      if (limits) {
        listBytes += pageBytes;
        if (tools.length > limits.maxTools)
          throw new InstanceError(
            'INSTANCE_FAILED',
            `Plugin ${this.opts.pluginId} lists more than ${limits.maxTools} tools (limit HAY_MAX_TOOLS)`,
          );
        if (listBytes > limits.maxToolsListBytes)
          throw new InstanceError(
            'INSTANCE_FAILED',
            `Plugin ${this.opts.pluginId} lists tools of more than ${limits.maxToolsListBytes} bytes (limit HAY_MAX_TOOLS_LIST_BYTES)`,
          );
      }
      cursor = result.nextCursor;
      if (cursor === undefined) return tools;
      if (seen.has(cursor)) break;
      seen.add(cursor);
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
    const entry: CallOptions = options ?? {};
    this.calls.add(entry);
    const result = await this.request(scope, `run tool "${name}"`, () =>
      this.client.request(
        {
          method: 'tools/call',
          params: { name, arguments: args, ...(options?.meta ? { _meta: options.meta } : {}) },
        },
        CallToolResultSchema,
        {
          signal: scope.signal,
          timeout: scope.timeoutMs + 1_000,
          ...(options?.onProgress ? { onprogress: options.onProgress } : {}),
        },
      ),
    ).finally(() => this.calls.delete(entry));
    this.checkResultSize(result, `tool "${name}"`);
    return result;
  }

  async ping(options?: CallOptions): Promise<void> {
    const scope = this.scope(options);
    await this.request(scope, 'answer ping', () =>
      this.client.request({ method: 'ping' }, EmptyResultSchema, {
        signal: scope.signal,
        timeout: scope.timeoutMs + 1_000,
      }),
    );
  }

  /** Resources, resource templates and prompts, each only when the server's capabilities declare it. */
  async listExtras(options?: CallOptions): Promise<ServerExtras> {
    const scope = this.scope(options);
    const caps = this.client.getServerCapabilities() ?? {};
    const budget = { items: 0, bytes: 0 };
    const resources = caps.resources
      ? await this.paginate(scope, 'resources/list', ListResourcesResultSchema, 'resources', budget)
      : [];
    const resourceTemplates = caps.resources
      ? await this.paginate(
          scope,
          'resources/templates/list',
          ListResourceTemplatesResultSchema,
          'resourceTemplates',
          budget,
        ).catch((err: unknown) => {
          // templates are optional within the resources capability
          if (err instanceof InstanceError && /Method not found/i.test(err.message)) return [];
          throw err;
        })
      : [];
    const prompts = caps.prompts
      ? await this.paginate(scope, 'prompts/list', ListPromptsResultSchema, 'prompts', budget)
      : [];
    return { resources, resourceTemplates, prompts };
  }

  async readResource(uri: string, options?: CallOptions): Promise<ReadResourceResult> {
    const scope = this.scope(options);
    const result = await this.request(scope, 'read a resource', () =>
      this.client.request(
        { method: 'resources/read', params: { uri, ...(options?.meta ? { _meta: options.meta } : {}) } },
        ReadResourceResultSchema,
        { signal: scope.signal, timeout: scope.timeoutMs + 1_000 },
      ),
    );
    this.checkResultSize(result, 'resources/read');
    return result;
  }

  async getPrompt(
    name: string,
    args: Record<string, string>,
    options?: CallOptions,
  ): Promise<GetPromptResult> {
    const scope = this.scope(options);
    const result = await this.request(scope, `get prompt "${name}"`, () =>
      this.client.request(
        {
          method: 'prompts/get',
          params: { name, arguments: args, ...(options?.meta ? { _meta: options.meta } : {}) },
        },
        GetPromptResultSchema,
        { signal: scope.signal, timeout: scope.timeoutMs + 1_000 },
      ),
    );
    this.checkResultSize(result, `prompts/get "${name}"`);
    return result;
  }

  async complete(request: CompletionRequest, options?: CallOptions): Promise<CompleteResult> {
    if (!this.client.getServerCapabilities()?.completions) return { completion: { values: [] } };
    const scope = this.scope(options);
    const result = await this.request(scope, 'complete an argument', () =>
      this.client.request(
        {
          method: 'completion/complete',
          params: { ...request, ...(options?.meta ? { _meta: options.meta } : {}) },
        },
        CompleteResultSchema,
        { signal: scope.signal, timeout: scope.timeoutMs + 1_000 },
      ),
    );
    this.checkResultSize(result, 'completion/complete');
    return result;
  }

  subscribeResource(uri: string, options?: CallOptions): Promise<void> {
    return this.resourceSubscription('resources/subscribe', uri, options);
  }

  unsubscribeResource(uri: string, options?: CallOptions): Promise<void> {
    return this.resourceSubscription('resources/unsubscribe', uri, options);
  }

  onResourceUpdated(listener: (uri: string, forOrgId?: string) => void): void {
    this.updatedListeners.push(listener);
  }

  private async resourceSubscription(
    method: 'resources/subscribe' | 'resources/unsubscribe',
    uri: string,
    options?: CallOptions,
  ): Promise<void> {
    if (!this.client.getServerCapabilities()?.resources?.subscribe)
      throw new InstanceError('INSTANCE_FAILED', 'This plugin does not offer resource subscriptions');
    const scope = this.scope(options);
    await this.request(scope, method, () =>
      this.client.request(
        { method, params: { uri, ...(options?.meta ? { _meta: options.meta } : {}) } },
        EmptyResultSchema,
        { signal: scope.signal, timeout: scope.timeoutMs + 1_000 },
      ),
    );
  }

  onExtrasChanged(listener: () => void): void {
    this.extrasListeners.push(listener);
  }

  /**
   * Fails pending requests with `err` at once, for a transport that can only report a broken stream (e.g. an
   * SSE answer cut at the size cap). `requestIds`: the JSON-RPC ids concerned; they get `err` and the
   * connection stays usable. Empty: the broken stream may have carried any answer, so the session ends:
   * every pending request gets `err` and onEnd fires.
   */
  failRequests(err: HayError, requestIds: readonly (string | number)[]): void {
    if (this.closing || this.ends.ended) return;
    const dispatch = this.transportRef?.onmessage;
    if (requestIds.length > 0 && dispatch) {
      for (const id of requestIds) {
        const key = ++this.failedSeq;
        this.failed.set(key, err);
        // an id no longer pending is never looked up: keep the map bounded
        if (this.failed.size > 256) this.failed.delete(this.failed.keys().next().value as number);
        dispatch({
          jsonrpc: '2.0',
          id,
          error: { code: HOST_FAILED_CODE, message: err.message, data: { key } },
        });
      }
      return;
    }
    this.fatal = err;
    this.end({ kind: 'error', message: err.message, error: err });
    void this.transportRef?.close().catch(() => undefined);
  }

  /** Fires once when the session ends other than by close(); a listener added after the end fires at once. */
  onEnd(listener: (end: ConnectionEnd) => void): void {
    this.ends.onEnd(listener);
  }

  onToolsChanged(listener: () => void): void {
    this.toolsListeners.push(listener);
  }

  /** Memory and CPU of the local process group; undefined for remote connections or once it is gone. */
  async usage(): Promise<{ rssBytes: number; cpuSeconds: number } | undefined> {
    const proc = this.opts.process;
    if (!proc || proc.currentState === 'stopped') return undefined;
    return groupUsage(proc.pid);
  }

  /** Closes the MCP session and stops the local process (escalating). Idempotent; onEnd does not fire. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.client.close();
      } catch (err) {
        this.opts.logger.debug({ err: errorText(err) }, 'MCP client close failed');
      }
      await this.opts.process?.stop();
      await this.opts.onClose?.();
    })();
    return this.closing;
  }

  /**
   * Answers a plugin's server-to-client request through the one call in flight (see the class comment).
   * Rejections become the plugin's JSON-RPC error; their messages are written for the plugin's author.
   */
  private async relay(request: PluginServerRequest, signal: AbortSignal): Promise<unknown> {
    const n = this.calls.size;
    if (n === 0)
      throw new McpError(
        ErrorCode.InvalidRequest,
        `Hay answers ${request.method} only during a tools/call, and none is in flight`,
      );
    if (n > 1)
      throw new McpError(
        ErrorCode.InvalidRequest,
        `Hay cannot tell which of the ${n} tools/call requests in flight this ${request.method} belongs to; it is answered only while exactly one call is in flight`,
      );
    const relay = [...this.calls][0]?.onServerRequest;
    if (!relay)
      throw new McpError(
        ErrorCode.InvalidRequest,
        `The caller of this tool (the Hay API, not an MCP client) cannot answer ${request.method}`,
      );
    try {
      return await relay(request, signal);
    } catch (err) {
      if (err instanceof McpError) throw err;
      throw new McpError(ErrorCode.InternalError, errorText(err));
    }
  }

  private async paginate<K extends 'resources' | 'resourceTemplates' | 'prompts'>(
    scope: CallScope,
    method: 'resources/list' | 'resources/templates/list' | 'prompts/list',
    schema:
      | typeof ListResourcesResultSchema
      | typeof ListResourceTemplatesResultSchema
      | typeof ListPromptsResultSchema,
    key: K,
    budget: { items: number; bytes: number },
  ): Promise<ServerExtras[K]> {
    const out: unknown[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const result = (await this.request(scope, `answer ${method}`, () =>
        this.client.request({ method, params: cursor === undefined ? {} : { cursor } }, schema, {
          signal: scope.signal,
          timeout: scope.timeoutMs + 1_000,
        }),
      )) as Record<string, unknown> & { nextCursor?: string };
      const items = (result[key] as unknown[] | undefined) ?? [];
      out.push(...items);
      const pageBytes = measureListedItems(this.opts.pluginId, items, method);
      const limits = this.opts.limits;
      if (limits) {
        budget.items += items.length;
        budget.bytes += pageBytes;
        if (budget.items > limits.maxTools || budget.bytes > limits.maxToolsListBytes)
          throw new InstanceError(
            'INSTANCE_FAILED',
            `Plugin ${this.opts.pluginId} lists more resources and prompts than allowed (limits HAY_MAX_TOOLS, HAY_MAX_TOOLS_LIST_BYTES)`,
          );
      }
      cursor = result.nextCursor;
      if (cursor === undefined) return out as ServerExtras[K];
      if (seen.has(cursor)) break;
      seen.add(cursor);
    }
    throw new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${this.opts.pluginId} returned a ${method} cursor that never ends`,
    );
  }

  private checkResultSize(result: unknown, what: string): void {
    checkPluginResult(this.opts.pluginId, result, what, this.opts.limits?.maxResultBytes);
  }

  private scope(options: CallOptions | undefined): CallScope {
    if (this.closing)
      throw new InstanceError('INSTANCE_FAILED', `The connection to plugin ${this.opts.pluginId} is closed`);
    if (this.ends.ended) throw this.endedError(this.ends.ended);
    return callScope(options, this.opts.callTimeoutMs);
  }

  private async request<T>(scope: CallScope, what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw await this.mapError(err, scope, what);
    }
  }

  private async mapError(err: unknown, scope: CallScope, what: string): Promise<Error> {
    const plugin = `Plugin ${this.opts.pluginId}`;
    if (err instanceof HayError) return err;
    if (err instanceof McpError && err.code === HOST_FAILED_CODE) {
      const key = (err.data as { key?: unknown } | undefined)?.key;
      const failed = typeof key === 'number' ? this.failed.get(key) : undefined;
      if (failed) {
        this.failed.delete(key as number);
        return failed;
      }
    }
    if (this.fatal) return this.fatal;
    if (scope.callerAborted()) return abortReason(scope.signal);
    if (this.opts.unauthorizedError && err instanceof UnauthorizedError) return this.opts.unauthorizedError();
    if (scope.timedOut() || (err instanceof McpError && err.code === Number(ErrorCode.RequestTimeout))) {
      return new TimeoutError(`${plugin} did not ${what} within ${scope.timeoutMs} ms`);
    }
    if (
      err instanceof McpError &&
      err.code === Number(ErrorCode.ConnectionClosed) &&
      (this.transportClosed || this.closing)
    ) {
      if (this.closing)
        return new InstanceError(
          'SHUTTING_DOWN',
          `The connection to ${plugin} was closed while it was asked to ${what}`,
        );
      const proc = this.opts.process;
      if (proc) {
        const exit = await timeoutPromise(proc.exited, EXIT_STATUS_WAIT_MS);
        await timeoutPromise(proc.stderrClosed, STDERR_CLOSE_WAIT_MS);
        const lines = proc.stderrLines();
        return new InstanceError(
          'INSTANCE_CRASHED',
          `${plugin} ${describeExit(exit)} while it was asked to ${what}${lines.length > 0 ? `; its last stderr lines: ${lines.join(' | ')}` : ''}`,
        );
      }
      return new InstanceError(
        'INSTANCE_CRASHED',
        `The connection to ${plugin} closed while it was asked to ${what}`,
      );
    }
    if (err instanceof McpError && err.code === Number(ErrorCode.InvalidParams)) {
      return new ValidationError(
        'ARGUMENTS_INVALID',
        `${plugin} rejected the request to ${what}: ${pluginErrorText(err.message)}`,
      );
    }
    if (err instanceof McpError)
      return new InstanceError(
        'INSTANCE_FAILED',
        `${plugin} failed to ${what}: ${pluginErrorText(err.message)}`,
      );
    return new InstanceError(
      'INSTANCE_FAILED',
      `${plugin} could not ${what}: ${pluginErrorText(errorText(err))}`,
    );
  }

  private endedError(end: ConnectionEnd): InstanceError {
    const plugin = `Plugin ${this.opts.pluginId}`;
    if (end.kind === 'exited') {
      const limit = end.limit ? ` (${end.limit} limit reached)` : '';
      return new InstanceError(
        'INSTANCE_CRASHED',
        `${plugin} is not running: it ${describeExit(end)}${limit}`,
      );
    }
    if (end.kind === 'error')
      return new InstanceError('INSTANCE_CRASHED', `${plugin} connection failed: ${end.message}`);
    return new InstanceError('INSTANCE_CRASHED', `The connection to ${plugin} was closed by the server`);
  }

  private onTransportClosed(): void {
    this.transportClosed = true;
    if (this.closing || !this.opened) return;
    const proc = this.opts.process;
    if (proc) {
      // Local: the end is reported from the process exit (with code/signal); make sure it comes.
      void proc.stop();
      return;
    }
    this.end({ kind: 'closed' });
  }

  private end(end: ConnectionEnd): void {
    if (!this.closing) this.ends.end(end);
  }

  private safely(fn: () => void): void {
    this.ends.safely(fn);
  }
}
