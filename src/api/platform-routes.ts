import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit-log.js';
import { HayError, PermissionDeniedError, ValidationError, isHayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PlatformApi } from '../platform/platform-api.js';
import type { PlatformQuotas } from '../platform/quotas.js';
import type { PlatformTokens } from '../security/platform-token.js';
import { httpStatusOf } from './error-map.js';
import { bearerToken } from './bearer.js';

/**
 * Mounts `POST /v1/platform/<api>/<method>` for each platform API. The caller is a plugin process with
 * its HAY_API_TOKEN; the token must grant `<api>` (manifest permissions.api), checked on every call.
 * Violations answer 403 with the guide's message and are audited.
 */
export function registerPlatformRoutes(
  app: FastifyInstance,
  deps: {
    apis: readonly PlatformApi[];
    tokens: PlatformTokens;
    audit: AuditLog;
    metrics: Metrics;
    logger: Logger;
    /** Per-org quotas (email per hour, ...); unset: unlimited. */
    quotas?: PlatformQuotas;
    /**
     * APIs custom (tenant-uploaded) plugins may not use even when their manifest asks, with the
     * operator setting that allows them, e.g. { email: 'HAY_EMAIL_CUSTOM_PLUGINS=allow' }.
     */
    deniedToCustom?: Partial<Record<string, string>>;
    /** Whether a plugin key is a custom (tenant) plugin. */
    isCustom?: (pluginKey: string) => boolean;
  },
): void {
  const byName = new Map(deps.apis.map((a) => [a.name as string, a]));
  // a running plugin exchanges its token (valid, or expired within the grace period) for a fresh one
  app.post('/v1/platform/token/refresh', async (req, reply) => {
    try {
      const { token, claims } = await deps.tokens.refresh(bearerToken(req.headers.authorization));
      return reply.send({ token, expiresAt: new Date(claims.exp).toISOString() });
    } catch (err) {
      const code = isHayError(err) ? err.code : 'INTERNAL';
      if (!isHayError(err)) deps.logger.error({ err }, 'platform token refresh failed');
      return reply
        .status(httpStatusOf(code))
        .send({ error: { code, message: isHayError(err) ? err.message : 'Internal error' } });
    }
  });
  app.post<{ Params: { api: string; method: string } }>('/v1/platform/:api/:method', async (req, reply) => {
    let orgId: string | null = null;
    let pluginId: string | undefined;
    try {
      const header = req.headers.authorization;
      const claims = await deps.tokens.verify(bearerToken(header));
      orgId = claims.orgId;
      pluginId = claims.pluginId;
      const api = byName.get(req.params.api);
      const method = api?.methods[req.params.method];
      if (!api || !method)
        throw new HayError('PLUGIN_NOT_FOUND', `no platform API ${req.params.api}.${req.params.method}`);
      if (!claims.apis.includes(api.name)) {
        deps.metrics.permissionDenied.inc({ plugin: claims.pluginId, api: api.name });
        deps.audit.record({
          organizationId: claims.orgId,
          actor: `plugin:${claims.pluginId}`,
          action: 'permission.denied',
          pluginId: claims.pluginId,
          outcome: 'denied',
          details: { api: api.name, method: req.params.method },
        });
        throw new PermissionDeniedError(claims.pluginId, api.name);
      }
      const setting = deps.deniedToCustom?.[api.name];
      if (setting !== undefined && deps.isCustom?.(claims.pluginKey)) {
        deps.audit.record({
          organizationId: claims.orgId,
          actor: `plugin:${claims.pluginId}`,
          action: 'permission.denied',
          pluginId: claims.pluginId,
          outcome: 'denied',
          details: { api: api.name, method: req.params.method, reason: 'custom plugin' },
        });
        throw new HayError(
          'PERMISSION_DENIED',
          `the ${api.name} API is not available to custom plugins on this host; the operator can allow it with ${setting}`,
        );
      }
      const parsed = method.input.safeParse(req.body);
      if (!parsed.success)
        throw new ValidationError(
          'INPUT_INVALID',
          parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '),
        );
      deps.quotas?.take(claims.orgId, claims.pluginId, api.name, method.cost?.(parsed.data) ?? 1);
      const controller = new AbortController();
      req.raw.once('close', () => controller.abort());
      const result = await method.handler(parsed.data, {
        orgId: claims.orgId,
        pluginId: claims.pluginId,
        signal: controller.signal,
      });
      return reply.send(result);
    } catch (err) {
      const code = isHayError(err) ? err.code : 'INTERNAL';
      if (!isHayError(err)) deps.logger.error({ err, orgId, pluginId }, 'platform API call failed');
      return reply
        .status(httpStatusOf(code))
        .send({ error: { code, message: isHayError(err) ? err.message : 'Internal error' } });
    }
  });
}
