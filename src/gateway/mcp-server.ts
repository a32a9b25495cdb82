import {
  ProtocolError,
  Server,
  type CallToolResult as McpCallToolResult,
  type ClientCapabilities,
  type CompleteResult as McpCompleteResult,
  type GetPromptResult as McpGetPromptResult,
  type LoggingLevel,
  type Prompt as McpPrompt,
  type ReadResourceResult as McpReadResourceResult,
  type Resource as McpResource,
  type ListResourceTemplatesResult,
  type ServerContext,
  type Tool as McpTool,
} from '@modelcontextprotocol/server';
import { MCP_ERROR } from '../api/error-map.js';
import { isHayError } from '../errors.js';
import type { Caller, PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import { approxBytes } from '../runtime/json-size.js';
import type { CompletionRequest, PluginServerRequest } from '../runtime/ports.js';
import type { GatewayCatalog } from './catalog.js';
import { KeyedCoalescer } from './coalesce.js';
import type { InputRounds, RoundOutcome, RoundTarget } from './input-rounds.js';
import { parseExposedUri, RESOURCE_URI_PREFIX } from './naming.js';
import type { ResourceSubscriptions } from './subscriptions.js';

/** Progress notifications relayed per call; a plugin sending more is not relayed further. */
const MAX_RELAYED_PROGRESS = 10_000;
/** Default of GatewayServerDeps.resourceUpdatedWindowMs. */
const RESOURCE_UPDATED_WINDOW_MS = 250;

export const GATEWAY_SERVER_INFO = { name: 'hay-gateway', version: '0.1.0' } as const;

export interface GatewayServerDeps {
  catalog: GatewayCatalog;
  plugins: PluginService;
  rounds: InputRounds;
  logger: Logger;
  /**
   * Approximate bytes of the plugin's progress and log notifications relayed on one tools/call request
   * (HAY_MCP_MAX_NOTIFICATION_BYTES_PER_CALL); what does not fit is dropped, the client told once.
   */
  maxNotificationBytesPerCall: number;
  /** Given for a 2025-11-25 session's server: it offers resources/subscribe (bounded per session). */
  subscriptions?: { registry: ResourceSubscriptions; maxPerSession: number };
  /**
   * A plugin's notifications/resources/updated reach a session at most once per this window per URI (the
   * first at once, the rest as one at the window's end). Default 250.
   */
  resourceUpdatedWindowMs?: number;
}

const LOG_LEVELS: readonly LoggingLevel[] = [
  'debug',
  'info',
  'notice',
  'warning',
  'error',
  'critical',
  'alert',
  'emergency',
];

function logLevel(level: string): LoggingLevel {
  return LOG_LEVELS.find((l) => l === level) ?? 'info';
}

/** Why the downstream client cannot answer a plugin's request (its declared capabilities), if it cannot. */
function refusal(caps: ClientCapabilities | undefined, request: PluginServerRequest): string | undefined {
  const missing = (what: string) =>
    `The MCP client connected to Hay does not support ${what} (it did not declare the capability), so ${request.method} cannot be answered`;
  if (request.method === 'sampling/createMessage') return caps?.sampling ? undefined : missing('sampling');
  if (request.method === 'roots/list') return caps?.roots ? undefined : missing('roots');
  const url = request.params.mode === 'url';
  const elicitation = caps?.elicitation as { form?: object; url?: object } | undefined;
  if (!elicitation) return missing('elicitation');
  if (url) return elicitation.url ? undefined : missing('URL elicitation');
  return elicitation.form || !elicitation.url ? undefined : missing('form elicitation');
}

/**
 * One MCP server (SDK `Server`, low level: the gateway owns dispatch) for one caller: tools/list from the
 * catalog under exposed names, tools/call mapped back and run through PluginService.invokeTool (the one
 * invocation path). The request's cancellation reaches the plugin through the call's signal; the
 * plugin's progress reaches the client when the client sent a progress token. HayErrors map through
 * MCP_ERROR: a tool result with isError, or a JSON-RPC error. completion/complete maps the exposed
 * prompt name or `hay://` template back and goes to the owning plugin through PluginService.complete.
 */
export function createGatewayServer(caller: Caller, d: GatewayServerDeps): Server {
  const server = new Server(
    { ...GATEWAY_SERVER_INFO },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { listChanged: true, ...(d.subscriptions ? { subscribe: true } : {}) },
        prompts: { listChanged: true },
        completions: {},
        logging: {},
      },
      instructions:
        'Tools and prompts of this organization’s enabled Hay plugins, named <pluginId>__<name>; resources as hay://<pluginId>/<uri>.',
    },
  );
  server.setRequestHandler('tools/list', async () => {
    const catalog = await d.catalog.forCaller(caller);
    return {
      // plugin-side (SDK 1.x) and gateway-side (SDK 2.x) types describe the same wire object
      tools: catalog.tools.map(({ exposed, entry }) => ({ ...entry.tool, name: exposed }) as McpTool),
    };
  });
  const mapError = (err: unknown, signal: AbortSignal, what: string): never => {
    if (!isHayError(err)) {
      if (signal.aborted) throw err;
      d.logger.error({ orgId: caller.organizationId, err }, `MCP ${what} failed`);
      throw new ProtocolError(-32603, 'Internal error');
    }
    const mapping = MCP_ERROR[err.code];
    // outside tools/call there is no tool result to carry a failure: it is a JSON-RPC error
    throw new ProtocolError(mapping.as === 'protocol' ? mapping.code : -32603, err.message, {
      code: err.code,
    });
  };
  /**
   * One tools/call request's relay of its plugin's notifications. The SDK queues what it sends on the
   * request's SSE stream without bound while the client does not read, so each request relays at most
   * maxNotificationBytesPerCall (approxBytes) and MAX_RELAYED_PROGRESS progress notifications; the first
   * one that does not fit is replaced by one warning log notification naming the limit, later ones are
   * dropped.
   */
  const targetOf = (ctx: ServerContext, pluginId: string | undefined): RoundTarget => {
    const progressToken = ctx.mcpReq._meta?.progressToken;
    const budget = d.maxNotificationBytesPerCall;
    let relayed = 0;
    let bytes = 0;
    let cut = false;
    const fits = (size: number): boolean => {
      if (cut) return false;
      if (bytes + size <= budget) {
        bytes += size;
        return true;
      }
      cut = true;
      d.logger.warn(
        { orgId: caller.organizationId, pluginId, limitBytes: budget },
        'plugin notifications over HAY_MCP_MAX_NOTIFICATION_BYTES_PER_CALL dropped',
      );
      void ctx.mcpReq
        .log(
          'warning',
          `Hay relays no further progress or log notifications of ${pluginId === undefined ? 'the plugin' : `plugin ${pluginId}`} on this request: over ${budget} bytes (HAY_MCP_MAX_NOTIFICATION_BYTES_PER_CALL)`,
          'hay',
        )
        .catch(() => undefined);
      return false;
    };
    return {
      signal: ctx.mcpReq.signal,
      refuses: (request) => refusal(server.getClientCapabilities(), request),
      onLog: (m) => {
        if (fits(approxBytes(m.data) + (m.logger?.length ?? 0) + 16))
          void ctx.mcpReq.log(logLevel(m.level), m.data, m.logger).catch(() => undefined);
      },
      ...(progressToken === undefined
        ? {}
        : {
            onProgress: (p) => {
              if (relayed >= MAX_RELAYED_PROGRESS) return;
              if (!fits((p.message?.length ?? 0) + 24)) return;
              relayed++;
              void ctx.mcpReq
                .notify({ method: 'notifications/progress', params: { progressToken, ...p } })
                .catch(() => undefined);
            },
          }),
    };
  };
  server.setRequestHandler('tools/call', async (request, ctx) => {
    const state = ctx.mcpReq.requestState<string>();
    let outcome: RoundOutcome<unknown>;
    let outputSchema: McpTool['outputSchema'];
    if (typeof state === 'string') {
      const resumed = d.rounds.resume(caller, state, ctx.mcpReq.inputResponses, targetOf(ctx, undefined));
      if (!resumed) throw new ProtocolError(-32602, 'Invalid or expired requestState');
      outcome = await resumed;
    } else {
      const name = request.params.name;
      const catalog = await d.catalog.forCaller(caller);
      const entry = catalog.resolve(name);
      if (!entry) throw new ProtocolError(-32602, `Unknown tool: ${name.slice(0, 100)}`);
      outputSchema = entry.tool.outputSchema as McpTool['outputSchema'];
      outcome = await d.rounds.begin(caller, targetOf(ctx, entry.pluginId), (hooks) =>
        d.plugins.invokeTool(
          caller,
          { pluginId: entry.pluginId, toolName: entry.tool.name, arguments: request.params.arguments ?? {} },
          hooks.signal,
          hooks,
        ),
      );
    }
    if (outcome.kind === 'input') return outcome.result;
    if (outcome.kind === 'done')
      return server.projectCallToolResult(outcome.value as McpCallToolResult, outputSchema);
    const err = outcome.error;
    if (isHayError(err) && MCP_ERROR[err.code].as === 'tool_result')
      return {
        content: [{ type: 'text', text: `${err.code}: ${err.message}` }],
        isError: true,
        _meta: { 'hay/error': { code: err.code, ...(err.details ? { details: err.details } : {}) } },
      };
    return mapError(err, ctx.mcpReq.signal, 'tools/call');
  });
  server.setRequestHandler('resources/list', async () => {
    const extras = await d.catalog.extrasForCaller(caller);
    return { resources: extras.resources as McpResource[] };
  });
  server.setRequestHandler('resources/templates/list', async () => {
    const extras = await d.catalog.extrasForCaller(caller);
    return {
      resourceTemplates: extras.resourceTemplates as ListResourceTemplatesResult['resourceTemplates'],
    };
  });
  server.setRequestHandler('resources/read', async (request, ctx) => {
    const asked = request.params.uri;
    let target = parseExposedUri(asked);
    if (!target) {
      const owner = (await d.catalog.extrasForCaller(caller)).ownerOfOwnUri(asked);
      if (owner === 'ambiguous')
        throw new ProtocolError(
          -32002,
          `Several plugins list the resource ${asked.slice(0, 200)}; read it as ${RESOURCE_URI_PREFIX}<pluginId>/<uri>`,
        );
      if (owner === undefined) throw new ProtocolError(-32002, `Resource not found: ${asked.slice(0, 200)}`);
      target = { pluginId: owner, uri: asked };
    }
    try {
      const result = await d.plugins.readResource(caller, target.pluginId, target.uri, ctx.mcpReq.signal);
      const own = target.uri;
      return {
        ...result,
        contents: result.contents.map((c) => (c.uri === own ? { ...c, uri: asked } : c)),
      } as McpReadResourceResult;
    } catch (err) {
      return mapError(err, ctx.mcpReq.signal, 'resources/read');
    }
  });
  if (d.subscriptions) {
    const { registry, maxPerSession } = d.subscriptions;
    // a plugin flooding resources/updated would queue without bound on a session that does not read
    const updates = new KeyedCoalescer(
      d.resourceUpdatedWindowMs ?? RESOURCE_UPDATED_WINDOW_MS,
      (uri) => void server.sendResourceUpdated({ uri }).catch(() => undefined),
    );
    const mine = registry.session(caller, (uri) => updates.push(uri));
    server.onclose = () => {
      updates.close();
      mine.close();
    };
    const targetOfUri = async (asked: string) => {
      const exposed = parseExposedUri(asked);
      if (exposed) return exposed;
      const owner = (await d.catalog.extrasForCaller(caller)).ownerOfOwnUri(asked);
      if (owner === undefined || owner === 'ambiguous')
        throw new ProtocolError(
          -32602,
          `${owner === undefined ? 'Unknown' : 'Ambiguous'} resource ${asked.slice(0, 200)}; use its ${RESOURCE_URI_PREFIX}<pluginId>/<uri> form`,
        );
      return { pluginId: owner, uri: asked };
    };
    server.setRequestHandler('resources/subscribe', async (request, ctx) => {
      const target = await targetOfUri(request.params.uri);
      try {
        if (!(await mine.subscribe(target.pluginId, target.uri, request.params.uri)))
          throw new ProtocolError(-32602, `At most ${maxPerSession} resource subscriptions per session`);
      } catch (err) {
        if (err instanceof ProtocolError) throw err;
        return mapError(err, ctx.mcpReq.signal, 'resources/subscribe');
      }
      return {};
    });
    server.setRequestHandler('resources/unsubscribe', async (request) => {
      const target = await targetOfUri(request.params.uri);
      await mine.unsubscribe(target.pluginId, target.uri);
      return {};
    });
  }
  server.setRequestHandler('prompts/list', async () => {
    const extras = await d.catalog.extrasForCaller(caller);
    return { prompts: extras.prompts as McpPrompt[] };
  });
  server.setRequestHandler('prompts/get', async (request, ctx) => {
    const name = request.params.name;
    const ref = (await d.catalog.extrasForCaller(caller)).resolvePrompt(name);
    if (!ref) throw new ProtocolError(-32602, `Unknown prompt: ${name.slice(0, 100)}`);
    try {
      const result = await d.plugins.getPrompt(
        caller,
        ref.pluginId,
        ref.name,
        request.params.arguments ?? {},
        ctx.mcpReq.signal,
      );
      return result as McpGetPromptResult;
    } catch (err) {
      return mapError(err, ctx.mcpReq.signal, 'prompts/get');
    }
  });
  server.setRequestHandler('completion/complete', async (request, ctx) => {
    const { ref, argument, context } = request.params;
    const extras = await d.catalog.extrasForCaller(caller);
    let pluginId: string;
    let own: CompletionRequest['ref'];
    if (ref.type === 'ref/prompt') {
      const prompt = extras.resolvePrompt(ref.name);
      if (!prompt) throw new ProtocolError(-32602, `Unknown prompt: ${ref.name.slice(0, 100)}`);
      pluginId = prompt.pluginId;
      own = { type: 'ref/prompt', name: prompt.name };
    } else {
      const target = parseExposedUri(ref.uri);
      if (target) {
        pluginId = target.pluginId;
        own = { type: 'ref/resource', uri: target.uri };
      } else {
        const owner = extras.ownerOfOwnTemplate(ref.uri);
        if (owner === undefined || owner === 'ambiguous')
          throw new ProtocolError(
            -32602,
            `${owner === undefined ? 'Unknown' : 'Ambiguous'} resource template ${ref.uri.slice(0, 200)}; use the ${RESOURCE_URI_PREFIX}<pluginId>/<uriTemplate> form of resources/templates/list`,
          );
        pluginId = owner;
        own = { type: 'ref/resource', uri: ref.uri };
      }
    }
    try {
      const result = await d.plugins.complete(
        caller,
        pluginId,
        {
          ref: own,
          argument: { name: argument.name, value: argument.value },
          ...(context?.arguments ? { context: { arguments: context.arguments } } : {}),
        },
        ctx.mcpReq.signal,
      );
      return result as McpCompleteResult;
    } catch (err) {
      return mapError(err, ctx.mcpReq.signal, 'completion/complete');
    }
  });
  return server;
}
