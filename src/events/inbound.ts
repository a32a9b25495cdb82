import { and, eq } from 'drizzle-orm';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit-log.js';
import type { Db } from '../db/database.js';
import { inboundRouteSecrets } from '../db/schema-events.js';
import { httpStatusOf } from '../api/error-map.js';
import { isHayError, type HayErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ApiRoute } from '../manifest/types.js';
import type { PluginRegistry, RegisteredPlugin } from '../registry/plugin-registry.js';
import type { RateLimiter } from '../security/rate-limiter.js';
import { collectKeyIds, type SecretBox } from '../security/secret-box.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import type { EventBus } from './bus.js';
import type { EventsMetrics } from './metrics.js';
import { newSigningSecret, verifyBodyHmac, verifyHaySignature, verifyToken } from './signing.js';

/** `<METHOD> <path>`: how a manifest route is named in secrets, logs and the API. */
export function routeKey(r: Pick<ApiRoute, 'method' | 'path'>): string {
  return `${r.method} ${r.path}`;
}

/** Routes of a plugin the host serves (those with a handler). */
export function servedRoutes(p: RegisteredPlugin): (ApiRoute & { handler: string })[] {
  return (p.manifest?.capabilities?.api?.routes ?? []).filter(
    (r): r is ApiRoute & { handler: string } => typeof r.handler === 'string',
  );
}

const s = inboundRouteSecrets;

/** Host-generated route secrets, encrypted at rest; the plain secret is returned only by rotate. */
export class RouteSecrets {
  constructor(private readonly d: { db: Db; box: SecretBox }) {}

  async get(orgId: string, pluginId: string, route: string): Promise<string | undefined> {
    const [row] = await this.d.db
      .select({ secret: s.secret })
      .from(s)
      .where(and(eq(s.organizationId, orgId), eq(s.pluginId, pluginId), eq(s.route, route)));
    return row ? this.d.box.decrypt(row.secret) : undefined;
  }

  async rotate(orgId: string, pluginId: string, route: string): Promise<string> {
    const secret = newSigningSecret();
    const enc = this.d.box.encrypt(secret);
    await this.d.db
      .insert(s)
      .values({ organizationId: orgId, pluginId, route, secret: enc })
      .onConflictDoUpdate({
        target: [s.organizationId, s.pluginId, s.route],
        set: { secret: enc, createdAt: new Date() },
      });
    return secret;
  }

  async reencrypt(): Promise<number> {
    let changed = 0;
    for (const row of await this.d.db.select().from(s))
      if (this.d.box.needsReencrypt(row.secret)) {
        await this.d.db
          .update(s)
          .set({ secret: this.d.box.encrypt(this.d.box.decrypt(row.secret)) })
          .where(eq(s.id, row.id));
        changed++;
      }
    return changed;
  }

  async keyIds(into: Set<string>): Promise<void> {
    for (const row of await this.d.db.select({ secret: s.secret }).from(s)) collectKeyIds(row.secret, into);
  }
}

export interface InboundDeps {
  registry: PluginRegistry;
  settings: PluginSettingsService;
  bus: EventBus;
  secrets: RouteSecrets;
  limiter: RateLimiter;
  audit: AuditLog;
  metrics: EventsMetrics;
  logger: Logger;
  /** Host cap on a body; a route's maxBodyBytes can only lower it. */
  maxBodyBytes: number;
  /** Hay-Signature replay window. */
  toleranceSeconds: number;
}

interface Resolved {
  orgId: string;
  plugin: RegisteredPlugin;
  route: ApiRoute & { handler: string };
  path: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DROPPED_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization', 'host', 'connection']);
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

function fail(
  reply: FastifyReply,
  code: HayErrorCode,
  message: string,
  headers: Record<string, string> = {},
) {
  return reply.status(httpStatusOf(code)).headers(headers).send({ error: { code, message } });
}

/**
 * Serves every `capabilities.api.routes` entry with a `handler` at
 * `<METHOD> /v1/hooks/<orgId>/<pluginId><path>` while the plugin is enabled for the org. Order of checks:
 * route exists and plugin enabled (else 404, the same answer either way), rate limit per (org, plugin,
 * route) before the body is read (429), size (413), caller verification (401, audited, nothing stored),
 * then the request becomes an outbox delivery to the handler tool and the answer is 202 at once.
 */
export function registerInboundRoutes(app: FastifyInstance, deps: InboundDeps): void {
  const resolved = new WeakMap<FastifyRequest, Resolved>();
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    scope.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        deps.metrics.inbound.inc({ outcome: 'too_large' });
        return reply
          .status(413)
          .send({ error: { code: 'INPUT_INVALID', message: 'request body is too large' } });
      }
      if (isHayError(err)) return fail(reply, err.code, err.message);
      deps.logger.error({ err }, 'inbound route failed');
      return fail(reply, 'INTERNAL', 'Internal error');
    });
    scope.addHook('onRequest', async (req: FastifyRequest<{ Params: Record<string, string> }>, reply) => {
      const { orgId = '', pluginId = '' } = req.params;
      const path = `/${req.params['*'] ?? ''}`;
      const notFound = () => {
        deps.metrics.inbound.inc({ outcome: 'not_found' });
        return fail(reply, 'PLUGIN_NOT_FOUND', `no inbound route ${req.method} ${path} for this plugin`);
      };
      if (!UUID.test(orgId)) return notFound();
      const plugin = deps.registry.get(orgId, pluginId);
      const route =
        plugin && plugin.status === 'ok'
          ? servedRoutes(plugin).find((r) => r.method === req.method && r.path === path)
          : undefined;
      if (!plugin || !route) return notFound();
      if (!(await deps.settings.isEnabled(orgId, plugin.key))) return notFound();
      const key = `${orgId}\u0000${plugin.pluginId}\u0000${routeKey(route)}`;
      const taken = deps.limiter.take(key);
      if (!taken.ok) {
        deps.metrics.inbound.inc({ outcome: 'rate_limited' });
        const retry = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
        return fail(reply, 'RATE_LIMITED', `rate limit for this route exceeded; retry in ${retry} s`, {
          'retry-after': String(retry),
        });
      }
      const max = Math.min(route.maxBodyBytes ?? deps.maxBodyBytes, deps.maxBodyBytes);
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > max) {
        deps.metrics.inbound.inc({ outcome: 'too_large' });
        return fail(
          reply,
          'INPUT_INVALID',
          `request body is ${declared} bytes; this route takes at most ${max}`,
        );
      }
      resolved.set(req, { orgId, plugin, route, path });
      return undefined;
    });
    scope.route({
      method: [...METHODS],
      url: '/v1/hooks/:orgId/:pluginId/*',
      handler: async (req, reply) => {
        const r = resolved.get(req);
        if (!r) return fail(reply, 'PLUGIN_NOT_FOUND', 'no such inbound route');
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const max = Math.min(r.route.maxBodyBytes ?? deps.maxBodyBytes, deps.maxBodyBytes);
        if (body.length > max) {
          deps.metrics.inbound.inc({ outcome: 'too_large' });
          return fail(
            reply,
            'INPUT_INVALID',
            `request body is ${body.length} bytes; this route takes at most ${max}`,
          );
        }
        const log = deps.logger.child({
          orgId: r.orgId,
          pluginId: r.plugin.pluginId,
          route: routeKey(r.route),
        });
        const verdict = await verify(r, req, body, deps);
        if (!verdict.ok) {
          deps.metrics.inbound.inc({ outcome: 'unauthorized' });
          deps.audit.record({
            organizationId: r.orgId,
            actor: `ip:${req.ip}`,
            action: 'route.refused',
            pluginId: r.plugin.pluginId,
            outcome: 'denied',
            details: { route: routeKey(r.route), reason: verdict.reason },
          });
          log.info({ reason: verdict.reason }, 'inbound request refused');
          return fail(reply, 'UNAUTHORIZED', `caller verification failed: ${verdict.reason}`);
        }
        const idemHeader = r.route.idempotencyHeader?.toLowerCase();
        const idemRaw = idemHeader ? req.headers[idemHeader] : undefined;
        const idempotencyKey =
          typeof idemRaw === 'string' && idemRaw !== '' ? idemRaw.slice(0, 200) : undefined;
        const out = await deps.bus.acceptInbound(
          r.orgId,
          r.plugin.pluginId,
          r.route.handler,
          requestPayload(req, r, body),
          idempotencyKey,
        );
        deps.metrics.inbound.inc({ outcome: 'accepted' });
        deps.audit.record({
          organizationId: r.orgId,
          actor: `ip:${req.ip}`,
          action: 'route.receive',
          pluginId: r.plugin.pluginId,
          outcome: 'ok',
          details: {
            route: routeKey(r.route),
            eventId: out.eventId,
            duplicate: out.duplicate,
            bytes: body.length,
          },
        });
        return reply.status(202).send({ accepted: true, eventId: out.eventId, duplicate: out.duplicate });
      },
    });
  });
}

async function verify(
  r: Resolved,
  req: FastifyRequest,
  body: Buffer,
  deps: InboundDeps,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const auth = r.route.auth ?? { scheme: 'hay-signature' as const };
  let secret: string | undefined;
  if (auth.secretConfigField) {
    const values = await deps.settings.runtimeValues(
      r.orgId,
      r.plugin.key,
      r.plugin.manifest?.configSchema ?? {},
    );
    const v = values[auth.secretConfigField];
    secret = typeof v === 'string' && v !== '' ? v : undefined;
  } else secret = await deps.secrets.get(r.orgId, r.plugin.pluginId, routeKey(r.route));
  if (!secret)
    return {
      ok: false,
      reason: auth.secretConfigField
        ? `the plugin's "${auth.secretConfigField}" setting is empty`
        : 'no secret is set for this route (events.rotateRouteSecret creates one)',
    };
  const headerName = (
    auth.header ?? (auth.scheme === 'token' ? 'authorization' : 'hay-signature')
  ).toLowerCase();
  const raw = req.headers[headerName];
  const value = typeof raw === 'string' ? raw : undefined;
  switch (auth.scheme) {
    case 'hay-signature':
      return verifyHaySignature(value, body, [secret], {
        toleranceSeconds: deps.toleranceSeconds,
        nowSeconds: Math.floor(Date.now() / 1000),
      });
    case 'hmac-sha256':
      return verifyBodyHmac(value, body, secret, {
        prefix: auth.prefix ?? '',
        encoding: auth.encoding ?? 'hex',
      })
        ? { ok: true }
        : { ok: false, reason: `${headerName} does not match` };
    case 'token': {
      const prefix = auth.prefix ?? (headerName === 'authorization' ? 'Bearer ' : '');
      return verifyToken(value, `${prefix}${secret}`)
        ? { ok: true }
        : { ok: false, reason: `${headerName} does not match` };
    }
  }
}

function requestPayload(req: FastifyRequest, r: Resolved, body: Buffer): Record<string, unknown> {
  const authHeader = r.route.auth?.header?.toLowerCase();
  const headers: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of Object.entries(req.headers)) {
    if (DROPPED_HEADERS.has(k) || k === authHeader || k === 'hay-signature' || v === undefined) continue;
    if (++n > 100) break;
    headers[k] = (Array.isArray(v) ? v.join(', ') : v).slice(0, 4000);
  }
  const text = body.toString('utf8');
  const contentType = String(req.headers['content-type'] ?? '');
  let json: unknown;
  if (/\bjson\b/i.test(contentType))
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  const query =
    typeof req.query === 'object' && req.query !== null ? (req.query as Record<string, unknown>) : {};
  return {
    method: req.method,
    path: r.path,
    query,
    headers,
    body: text,
    ...(json !== undefined ? { json } : {}),
    receivedAt: new Date().toISOString(),
  };
}
