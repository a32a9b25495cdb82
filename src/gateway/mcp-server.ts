import {
  ProtocolError,
  Server,
  type CallToolResult as McpCallToolResult,
  type Tool as McpTool,
} from '@modelcontextprotocol/server';
import { MCP_ERROR } from '../api/error-map.js';
import { isHayError } from '../errors.js';
import type { Caller, PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import type { GatewayCatalog } from './catalog.js';

/** Progress notifications relayed per call; a plugin sending more is not relayed further. */
const MAX_RELAYED_PROGRESS = 10_000;

export const GATEWAY_SERVER_INFO = { name: 'hay-gateway', version: '0.1.0' } as const;

export interface GatewayServerDeps {
  catalog: GatewayCatalog;
  plugins: PluginService;
  logger: Logger;
}

/**
 * One MCP server (SDK `Server`, low level: the gateway owns dispatch) for one caller: tools/list from the
 * catalog under exposed names, tools/call mapped back and run through PluginService.invokeTool (the one
 * invocation path). The request's cancellation reaches the plugin through the call's signal; the
 * plugin's progress reaches the client when the client sent a progress token. HayErrors map through
 * MCP_ERROR: a tool result with isError, or a JSON-RPC error.
 */
export function createGatewayServer(caller: Caller, d: GatewayServerDeps): Server {
  const server = new Server(
    { ...GATEWAY_SERVER_INFO },
    {
      capabilities: { tools: { listChanged: true } },
      instructions: 'Tools of this organization’s enabled Hay plugins, named <pluginId>__<tool>.',
    },
  );
  server.setRequestHandler('tools/list', async () => {
    const catalog = await d.catalog.forCaller(caller);
    return {
      // plugin-side (SDK 1.x) and gateway-side (SDK 2.x) types describe the same wire object
      tools: catalog.tools.map(({ exposed, entry }) => ({ ...entry.tool, name: exposed }) as McpTool),
    };
  });
  server.setRequestHandler('tools/call', async (request, ctx) => {
    const name = request.params.name;
    const catalog = await d.catalog.forCaller(caller);
    const entry = catalog.resolve(name);
    if (!entry) throw new ProtocolError(-32602, `Unknown tool: ${name.slice(0, 100)}`);
    const progressToken = ctx.mcpReq._meta?.progressToken;
    // relayed progress is written before the result (the client drops progress after the result)
    const relayed: Promise<void>[] = [];
    try {
      const result = await d.plugins.invokeTool(
        caller,
        { pluginId: entry.pluginId, toolName: entry.tool.name, arguments: request.params.arguments ?? {} },
        ctx.mcpReq.signal,
        progressToken === undefined
          ? undefined
          : {
              onProgress: (p) => {
                if (relayed.length < MAX_RELAYED_PROGRESS)
                  relayed.push(
                    ctx.mcpReq
                      .notify({ method: 'notifications/progress', params: { progressToken, ...p } })
                      .catch(() => undefined),
                  );
              },
            },
      );
      await Promise.all(relayed);
      return server.projectCallToolResult(result as McpCallToolResult, entry.tool.outputSchema);
    } catch (err) {
      if (!isHayError(err)) {
        if (ctx.mcpReq.signal.aborted) throw err;
        d.logger.error({ orgId: caller.organizationId, err }, 'MCP tools/call failed');
        throw new ProtocolError(-32603, 'Internal error');
      }
      const mapping = MCP_ERROR[err.code];
      if (mapping.as === 'tool_result')
        return {
          content: [{ type: 'text', text: `${err.code}: ${err.message}` }],
          isError: true,
          _meta: { 'hay/error': { code: err.code, ...(err.details ? { details: err.details } : {}) } },
        };
      throw new ProtocolError(mapping.code, err.message, { code: err.code });
    }
  });
  return server;
}
