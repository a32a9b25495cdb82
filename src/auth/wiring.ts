import type { FastifyInstance } from 'fastify';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Db } from '../db/database.js';
import { HayError, NotFoundError, PreconditionError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PluginRegistry } from '../registry/plugin-registry.js';
import type { PluginConfigValues, PluginSpec } from '../runtime/ports.js';
import { collectKeyIds, type SecretBox } from '../security/secret-box.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import { JwtIssuer } from './jwt-issuer.js';
import { OAuthService, type AuthStatus, type ConnectResult } from './oauth-service.js';
import { OAuthStore } from './oauth-store.js';
import { PluginCredentials } from './plugin-credentials.js';

/** The plugin-auth operations the API exposes (tRPC procedures in src/api/auth-router.ts). */
export interface PluginAuthApi {
  connect(orgId: string, pluginId: string, actor: string): Promise<ConnectResult>;
  status(orgId: string, pluginId: string): Promise<AuthStatus>;
  disconnect(orgId: string, pluginId: string, actor: string): Promise<{ revoked: boolean }>;
  rotateSigningKey(actor: string): Promise<{ kid: string; retired: string[] }>;
}

export interface AuthWiringDeps {
  db: Db;
  box: SecretBox;
  audit: AuditLog;
  logger: Logger;
  registry: PluginRegistry;
  settings: PluginSettingsService;
  /** The host's public base URL (issuer of JWTs, base of the OAuth callback). */
  publicUrl: () => string;
  /** Remote URL and configuration of (org, plugin); the PluginEnvironment's remoteUrl. */
  remoteUrl: (
    orgId: string,
    spec: PluginSpec,
  ) => Promise<{ url: string; values: PluginConfigValues; fromConfiguration: boolean }>;
  /**
   * The tenant egress policy's guarded fetch for (org, plugin)'s tenant-directed URLs, or undefined where
   * the URL is the operator's (a core manifest's own URL): plain fetch then.
   */
  guardedFetch?: (
    orgId: string,
    spec: PluginSpec,
    fromConfiguration: boolean,
  ) => { fetch: FetchLike; close(): Promise<void> } | undefined;
  /** Stops (org, plugin)'s instance so the next call connects with new credentials. */
  restartInstance: (orgId: string, pluginKey: string, reason: string) => Promise<void>;
}

/**
 * Plugin authentication (capabilities.mcp.auth): the JWT issuer and JWKS, per-org OAuth for remote
 * plugins, and the credentials step the PluginEnvironment applies. `start()` loads (or creates) the
 * signing key; `close()` has nothing long-lived to free beyond listeners.
 */
export function wireAuth(d: AuthWiringDeps) {
  /** Guarded fetches by (org, plugin, URL origin), kept for the providers' lifetime; closed by close(). */
  const guards = new Map<string, { fetch: FetchLike; close(): Promise<void> }>();
  const jwt = new JwtIssuer({ db: d.db, box: d.box, issuer: d.publicUrl });
  const store = new OAuthStore(d.db, d.box);
  const oauth = new OAuthService({
    store,
    audit: d.audit,
    logger: d.logger,
    redirectUrl: () => `${d.publicUrl()}/v1/oauth/callback`,
    endpoint: d.remoteUrl,
    specByKey: (key) => {
      const p = d.registry.getByKey(key);
      return p ? d.registry.toSpec(p) : undefined;
    },
    fetchFor: (orgId, spec, fromConfiguration) => {
      const key = `${orgId}\u0000${spec.pluginKey}\u0000${fromConfiguration ? 1 : 0}`;
      const existing = guards.get(key);
      if (existing) return existing.fetch;
      const guard = d.guardedFetch?.(orgId, spec, fromConfiguration);
      if (!guard) return (url, init) => fetch(url, init);
      guards.set(key, guard);
      return guard.fetch;
    },
  });
  const credentials = new PluginCredentials({ jwt, oauth });

  const specOf = (orgId: string, pluginId: string): PluginSpec => {
    const p = d.registry.get(orgId, pluginId);
    const spec = p ? d.registry.toSpec(p) : undefined;
    if (!spec) throw new NotFoundError('PLUGIN_NOT_FOUND', `Plugin ${pluginId} not found`);
    return spec;
  };

  const onSettingsChanged = (e: { organizationId: string; pluginKey: string; enabled: boolean }) => {
    if (e.enabled) return;
    const p = d.registry.getByKey(e.pluginKey);
    const spec = p ? d.registry.toSpec(p) : undefined;
    if (!spec || !OAuthService.uses(spec)) return;
    oauth.revoke(e.organizationId, spec, 'system').catch((err: unknown) => {
      d.logger.warn(
        { orgId: e.organizationId, pluginId: spec.pluginId, err: String(err) },
        'OAuth revoke on disable failed',
      );
    });
  };
  d.settings.on('changed', onSettingsChanged);

  const api: PluginAuthApi = {
    async connect(orgId, pluginId, actor) {
      const spec = specOf(orgId, pluginId);
      if (!(await d.settings.isEnabled(orgId, spec.pluginKey))) {
        throw new PreconditionError(
          'PLUGIN_NOT_ENABLED',
          `Plugin ${pluginId} is not enabled for this organization: enable it first`,
        );
      }
      const result = await oauth.connect(orgId, spec, actor);
      if (result.status === 'connected') await d.restartInstance(orgId, spec.pluginKey, 'authorized');
      return result;
    },
    status: (orgId, pluginId) => oauth.status(orgId, specOf(orgId, pluginId)),
    async disconnect(orgId, pluginId, actor) {
      const spec = specOf(orgId, pluginId);
      const out = await oauth.revoke(orgId, spec, actor);
      await d.restartInstance(orgId, spec.pluginKey, 'authorization revoked');
      return out;
    },
    async rotateSigningKey(actor) {
      const out = await jwt.rotate();
      d.audit.record({ organizationId: null, actor, action: 'jwt.rotate', outcome: 'ok', details: out });
      return out;
    },
  };

  const registerRoutes = (app: FastifyInstance) => {
    app.get('/.well-known/jwks.json', async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return jwt.jwks();
    });
    app.get('/v1/oauth/callback', async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === 'string' && v.length <= 4096 ? v : undefined);
      reply.header('content-security-policy', "default-src 'none'");
      reply.header('cache-control', 'no-store');
      reply.type('text/plain; charset=utf-8');
      const state = str(q.state);
      if (state === undefined)
        return reply.code(400).send('Missing state: start again with plugins.connect.');
      try {
        const { pluginId, orgId } = await oauth.callback({
          state,
          ...(str(q.code) !== undefined ? { code: str(q.code) as string } : {}),
          ...(str(q.error) !== undefined ? { error: str(q.error) as string } : {}),
          ...(str(q.error_description) !== undefined
            ? { errorDescription: str(q.error_description) as string }
            : {}),
        });
        const p = d.registry.get(orgId, pluginId);
        if (p) await d.restartInstance(orgId, p.key, 'authorized');
        return reply
          .code(200)
          .send(`Plugin ${pluginId} is connected for your organization. You can close this window.`);
      } catch (err) {
        const message = err instanceof HayError ? err.message : 'Authorization failed';
        return reply.code(400).send(message);
      }
    });
  };

  return {
    jwt,
    oauth,
    store,
    credentials,
    api,
    registerRoutes,
    authorizationRequired: (spec: PluginSpec) => oauth.authorizationRequired(spec),
    /** Stored SecretBox values of this area, and re-encryption with the current key (key rotation). */
    secrets: {
      reencrypt: async () => (await jwt.reencrypt()) + (await store.reencrypt()),
      keyIds: async (into: Set<string>) => {
        collectKeyIds([...(await jwt.storedSecrets()), ...(await store.storedSecrets())], into);
      },
    },
    start: () => jwt.start(),
    close: async () => {
      d.settings.off('changed', onSettingsChanged);
      await Promise.all([...guards.values()].map((g) => g.close()));
      guards.clear();
    },
  };
}

export type AuthWiring = ReturnType<typeof wireAuth>;
