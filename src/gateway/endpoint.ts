import type { FastifyInstance, FastifyReply } from 'fastify';
import { bearerToken } from '../api/bearer.js';
import { httpStatusOf, MCP_ERROR } from '../api/error-map.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuthError, isHayError, OriginNotAllowedError } from '../errors.js';
import type { Caller } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import type { OrganizationService } from '../tenancy/organizations.js';
import { isLegacyEra } from './era.js';
import { headerCheck, type McpHostAllowList } from './host-check.js';
import type { LegacySessions } from './legacy-sessions.js';
import { authInfoFor, type ModernHandlers } from './modern-handlers.js';

export const MCP_PATH = '/mcp';

/**
 * `GET|POST|DELETE /mcp`: authenticates the organization API key (`Authorization: Bearer`), then hands
 * the request to the SDK: 2025-era traffic (initialize, Mcp-Session-Id, GET stream, DELETE) to
 * LegacySessions, everything else (the 2026-07-28 envelope, `server/discover`) to ModernHandlers; the
 * split is the SDK's own classification (`isLegacyEra`, equal to `isLegacyRequest`). Auth failures
 * answer before any MCP processing, with the status of src/api/error-map.ts and `{error: {code, message}}`. Before authentication, a `Host` or
 * `Origin` off the allow-list (DNS rebinding) is refused with 403 and a JSON-RPC error (id null,
 * `data.code` ORIGIN_NOT_ALLOWED).
 */
export function registerMcpEndpoint(
  app: FastifyInstance,
  d: {
    organizations: OrganizationService;
    audit: AuditLog;
    logger: Logger;
    legacy: LegacySessions;
    modern: ModernHandlers;
    allowList: McpHostAllowList;
  },
): void {
  const refusedHeaders = headerCheck(d.allowList);
  app.route({
    method: ['GET', 'POST', 'DELETE'],
    url: MCP_PATH,
    handler: async (req, reply) => {
      const refused = refusedHeaders(req.headers.host, req.headers.origin);
      if (refused !== undefined) return sendHeaderRefusal(reply, new OriginNotAllowedError(refused));
      let caller: Caller;
      try {
        caller = await authenticate(d, req.headers.authorization, req.ip);
      } catch (err) {
        return sendError(reply, err, d.logger);
      }
      const raw = Object.assign(req.raw, { auth: authInfoFor(caller) });
      const body: unknown = req.body;
      reply.hijack();
      try {
        if (isLegacyEra(req.method, req.headers, body)) await d.legacy.handle(caller, raw, reply.raw, body);
        else await d.modern.handle(caller, raw, reply.raw, body);
      } catch (err) {
        d.logger.error(
          { orgId: caller.organizationId, err: err instanceof Error ? err.message : String(err) },
          'MCP request failed',
        );
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json' });
          reply.raw.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'Internal error' } }));
        } else reply.raw.end();
      }
    },
  });
}

async function authenticate(
  d: { organizations: OrganizationService; audit: AuditLog },
  header: string | undefined,
  ip: string,
): Promise<Caller> {
  const principal = await d.organizations.authenticate(bearerToken(header)).catch((err: unknown) => {
    d.audit.recordAuthFailure({
      ip,
      token: bearerToken(header),
      reason: isHayError(err) ? err.message : 'error',
      route: MCP_PATH,
    });
    throw err;
  });
  if (principal.kind !== 'org')
    throw new AuthError('FORBIDDEN', '/mcp needs an organization API key, not the admin token');
  return {
    organizationId: principal.organizationId,
    actor: `key:${principal.keyPrefix}`,
    keyId: principal.keyId,
    ...(principal.scopes ? { scopes: principal.scopes } : {}),
  };
}

function sendError(reply: FastifyReply, err: unknown, logger: Logger) {
  const code = isHayError(err) ? err.code : 'INTERNAL';
  if (!isHayError(err)) logger.error({ err }, `${MCP_PATH} authentication failed`);
  if (code === 'UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer realm="hay"');
  return reply
    .status(httpStatusOf(code))
    .send({ error: { code, message: isHayError(err) ? err.message : 'Internal error' } });
}

function sendHeaderRefusal(reply: FastifyReply, err: OriginNotAllowedError) {
  const mapping = MCP_ERROR[err.code];
  return reply.status(httpStatusOf(err.code)).send({
    jsonrpc: '2.0',
    id: null,
    error: {
      code: mapping.as === 'protocol' ? mapping.code : -32600,
      message: err.message,
      data: { code: err.code },
    },
  });
}
