import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit-log.js';
import { AuthError, ValidationError, isHayError } from '../errors.js';
import type { PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import type { OrganizationService } from '../tenancy/organizations.js';
import { httpStatusOf } from './error-map.js';
import { inputs } from './inputs.js';
import { bearerToken } from './bearer.js';

/**
 * `POST /v1/invoke`: the same operation as the tRPC mutation `plugins.invokeTool` (same input schema,
 * same API-key auth, same PluginService call, so the same validation, rate limits, cache, audit and
 * metrics) on a plain fastify route, without tRPC's request/response adaptation. tRPC stays the API
 * contract; this route exists for callers that need the lowest per-call overhead. Answers 200 with the
 * tool result (an `isError` result included) or `{error: {code, message}}` with the mapped status.
 */
export function registerInvokeRoute(
  app: FastifyInstance,
  deps: { organizations: OrganizationService; plugins: PluginService; audit: AuditLog; logger: Logger },
): void {
  app.post('/v1/invoke', async (req, reply) => {
    try {
      const header = req.headers.authorization;
      const token = bearerToken(header);
      const principal = await deps.organizations.authenticate(token).catch((err: unknown) => {
        deps.audit.recordAuthFailure({
          ip: req.ip,
          token,
          reason: isHayError(err) ? err.message : 'error',
          route: 'invoke',
        });
        throw err;
      });
      if (principal.kind !== 'org')
        throw new AuthError('FORBIDDEN', 'this call needs an organization API key, not the admin token');
      const parsed = inputs.invokeTool.safeParse(req.body);
      if (!parsed.success)
        throw new ValidationError(
          'INPUT_INVALID',
          parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '),
        );
      const controller = new AbortController();
      // the client went away before the answer was written: cancel the work
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) controller.abort();
      });
      const caller = {
        organizationId: principal.organizationId,
        actor: `key:${principal.keyPrefix}`,
        keyId: principal.keyId,
        ...(principal.scopes ? { scopes: principal.scopes } : {}),
      };
      return await deps.plugins.invokeTool(caller, parsed.data, controller.signal, {
        signalPerRequest: true,
      });
    } catch (err) {
      const code = isHayError(err) ? err.code : 'INTERNAL';
      if (!isHayError(err)) deps.logger.error({ err }, 'POST /v1/invoke failed');
      const details = isHayError(err) && err.details ? { details: err.details } : {};
      return reply
        .status(httpStatusOf(code))
        .send({ error: { code, message: isHayError(err) ? err.message : 'Internal error', ...details } });
    }
  });
}
