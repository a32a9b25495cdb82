import type { IncomingMessage, ServerResponse } from 'node:http';
import { toNodeHandler, type NodeMcpRequestHandler } from '@modelcontextprotocol/node';
import {
  createMcpHandler,
  type AuthInfo,
  type McpHttpHandler,
  type Server,
} from '@modelcontextprotocol/server';
import type { Caller } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';

/** What the endpoint hands the SDK as `authInfo`: the caller rides in `extra`. */
export function authInfoFor(caller: Caller): AuthInfo {
  return { token: 'redacted', clientId: caller.keyId, scopes: [], extra: { caller } };
}

function callerOf(auth: AuthInfo | undefined): Caller {
  const caller = auth?.extra?.caller as Caller | undefined;
  if (!caller || typeof caller.organizationId !== 'string' || typeof caller.keyId !== 'string')
    throw new Error('MCP request reached the gateway without an authenticated caller');
  return caller;
}

/**
 * 2026-07-28 serving of `/mcp`: the SDK's `createMcpHandler` (stateless, per-request server from the
 * factory, `server/discover`, header checks, `subscriptions/listen` streams), strict about era
 * (2025-era traffic goes to LegacySessions). One handler per organization, so `notify.toolsChanged()`
 * reaches only that organization's listen streams.
 */
export class ModernHandlers {
  private readonly handlers = new Map<string, { handler: McpHttpHandler; node: NodeMcpRequestHandler }>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly d: {
      buildServer: (caller: Caller) => Server;
      logger: Logger;
      /** Open subscriptions/listen streams per organization. */
      maxSubscriptionsPerOrg: number;
      maxRequestBodyBytes: number;
    },
  ) {}

  handle(
    caller: Caller,
    req: IncomingMessage & { auth?: AuthInfo },
    res: ServerResponse,
    body: unknown,
  ): Promise<void> {
    if (this.closing) throw new Error('the MCP endpoint is closed');
    return this.forOrg(caller.organizationId).node(req, res, body);
  }

  /** Organizations that sent at least one 2026-07-28 request. */
  orgIds(): string[] {
    return [...this.handlers.keys()];
  }

  /** Publishes notifications/tools/list_changed to the organization's open listen streams. */
  toolsChanged(orgId: string): void {
    this.handlers.get(orgId)?.handler.notify.toolsChanged();
  }

  /** Publishes resources/list_changed and prompts/list_changed to the organization's listen streams. */
  extrasChanged(orgId: string): void {
    const notify = this.handlers.get(orgId)?.handler.notify;
    notify?.resourcesChanged();
    notify?.promptsChanged();
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([...this.handlers.values()].map((h) => h.handler.close())).then(() =>
      this.handlers.clear(),
    );
    return this.closing;
  }

  private forOrg(orgId: string) {
    let h = this.handlers.get(orgId);
    if (!h) {
      const logger = this.d.logger.child({ orgId });
      const handler = createMcpHandler(({ authInfo }) => this.d.buildServer(callerOf(authInfo)), {
        legacy: 'reject',
        maxSubscriptions: this.d.maxSubscriptionsPerOrg,
        maxRequestBodySize: this.d.maxRequestBodyBytes,
        onerror: (err) => logger.debug({ err: err.message }, 'MCP request rejected'),
      });
      h = {
        handler,
        node: toNodeHandler(handler, {
          onerror: (err) => logger.warn({ err: err.message }, 'MCP handler failed'),
        }),
      };
      this.handlers.set(orgId, h);
    }
    return h;
  }
}
