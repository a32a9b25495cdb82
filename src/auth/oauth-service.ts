import { randomBytes } from 'node:crypto';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { AuditLog } from '../audit/audit-log.js';
import {
  AuthorizationFailedError,
  AuthorizationRequiredError,
  HayError,
  PreconditionError,
  isHayError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { OAuth2AuthOptions } from '../manifest/types.js';
import type { PluginConfigValues, PluginSpec } from '../runtime/ports.js';
import { HostOAuthProvider } from './oauth-provider.js';
import type { OAuthStatus, OAuthStore } from './oauth-store.js';

export interface OAuthServiceOptions {
  store: OAuthStore;
  audit: AuditLog;
  logger: Logger;
  /** The host's OAuth callback URL (`<public url>/v1/oauth/callback`). */
  redirectUrl: () => string;
  /** Remote URL and configuration values of (org, plugin). */
  endpoint: (
    orgId: string,
    spec: PluginSpec,
  ) => Promise<{ url: string; values: PluginConfigValues; fromConfiguration?: boolean }>;
  /** A registered plugin by registry key, for callbacks (which carry only `state`). */
  specByKey: (pluginKey: string) => PluginSpec | undefined;
  /**
   * The fetch for (org, plugin)'s MCP and authorization-server requests: the tenant egress policy's
   * guarded fetch when the URL is tenant-directed (a custom plugin, or a URL from configuration).
   */
  fetchFor: (orgId: string, spec: PluginSpec, fromConfiguration: boolean) => FetchLike;
  /** Time allowed for one connect, callback or revoke. Default 30 s. */
  timeoutMs?: number;
  /** How long a started authorization may take before its `state` is refused. Default 10 min. */
  stateTtlMs?: number;
  now?: () => number;
}

export type ConnectResult =
  { status: 'connected' } | { status: 'authorization_required'; authorizationUrl: string; expiresAt: string };

export interface AuthStatus {
  method: 'oauth2';
  status: OAuthStatus | 'not_connected';
  expiresAt: string | null;
  lastError: string | null;
}

/**
 * OAuth 2.1 for remote plugins per organization, as the MCP authorization spec describes; the SDK does
 * discovery (protected resource metadata from WWW-Authenticate or well-known URLs, authorization server
 * metadata), registration (pre-registered, CIMD, dynamic), PKCE, `resource`, scopes and step-up. The host
 * adds: an org admin starts with `connect`, the browser lands on the host's callback bound by `state`,
 * tokens live encrypted per (org, plugin), runtime providers refresh before expiry, `revoke` on disable.
 */
export class OAuthService {
  private readonly runtimeProviders = new Map<string, HostOAuthProvider>();

  constructor(private readonly o: OAuthServiceOptions) {}

  static uses(spec: PluginSpec): boolean {
    return spec.manifest.capabilities?.mcp?.auth?.includes('oauth2') ?? false;
  }

  /** The runtime provider of (org, plugin): one per pair, so token caching and refreshes are shared. */
  async runtimeProvider(orgId: string, spec: PluginSpec): Promise<HostOAuthProvider> {
    const key = `${orgId}\u0000${spec.pluginKey}`;
    const existing = this.runtimeProviders.get(key);
    if (existing) return existing;
    const { url, values, fromConfiguration } = await this.o.endpoint(orgId, spec);
    const fetchFn = this.o.fetchFor(orgId, spec, fromConfiguration ?? false);
    const provider = this.provider(orgId, spec, url, values, fetchFn, { mode: 'runtime' });
    this.runtimeProviders.set(key, provider);
    return provider;
  }

  /** Error for an instance whose server refused for lack of authorization. */
  authorizationRequired(spec: PluginSpec): AuthorizationRequiredError {
    return new AuthorizationRequiredError(
      `Plugin ${spec.pluginId} needs OAuth authorization for this organization: an organization admin calls plugins.connect({"pluginId":"${spec.pluginId}"}) and opens the returned authorizationUrl`,
      { pluginId: spec.pluginId, connect: 'plugins.connect' },
    );
  }

  /**
   * Starts an authorization: tries the server with the stored tokens; if it needs authorization, returns
   * the authorization server's URL for the admin's browser (state and PKCE verifier stored).
   */
  async connect(orgId: string, spec: PluginSpec, actor: string): Promise<ConnectResult> {
    this.requireOauth(spec);
    const { url, values, fromConfiguration } = await this.o.endpoint(orgId, spec);
    const fetchFn = this.o.fetchFor(orgId, spec, fromConfiguration ?? false);
    const state = {
      value: randomBytes(32).toString('base64url'),
      expiresAt: new Date(this.now() + this.stateTtl()),
    };
    let authorizationUrl: URL | undefined;
    const provider = this.provider(orgId, spec, url, values, fetchFn, {
      mode: 'connect',
      state,
      onRedirect: (u) => {
        authorizationUrl = u;
      },
    });
    const record = await this.o.store.get(orgId, spec.pluginKey);
    if (record?.requestedScope !== undefined) {
      const discovery = record.discovery as { resourceMetadataUrl?: string } | undefined;
      try {
        await auth(provider, {
          serverUrl: url,
          scope: record.requestedScope,
          fetchFn,
          ...(discovery?.resourceMetadataUrl
            ? { resourceMetadataUrl: new URL(discovery.resourceMetadataUrl) }
            : {}),
        });
      } catch (err) {
        return this.connectFailed(orgId, spec, actor, err);
      }
      if (authorizationUrl !== undefined)
        return this.redirectResult(orgId, spec, actor, authorizationUrl, state.expiresAt);
    }
    const client = new Client({ name: 'hay-plugin-host', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      authProvider: provider,
      fetch: fetchFn,
    });
    const signal = AbortSignal.timeout(this.timeout());
    try {
      await client.connect(transport, { signal, timeout: this.timeout() });
      await client.listTools(undefined, { signal, timeout: this.timeout() });
      await client.close();
      this.forgetRuntime(orgId, spec);
      this.o.audit.record({
        organizationId: orgId,
        actor,
        action: 'oauth.connect',
        pluginId: spec.pluginId,
        outcome: 'ok',
        details: { status: 'connected' },
      });
      return { status: 'connected' };
    } catch (err) {
      await client.close().catch(() => undefined);
      if (authorizationUrl !== undefined)
        return this.redirectResult(orgId, spec, actor, authorizationUrl, state.expiresAt);
      return this.connectFailed(orgId, spec, actor, err);
    }
  }

  private redirectResult(
    orgId: string,
    spec: PluginSpec,
    actor: string,
    url: URL,
    expiresAt: Date,
  ): ConnectResult {
    this.o.audit.record({
      organizationId: orgId,
      actor,
      action: 'oauth.connect',
      pluginId: spec.pluginId,
      outcome: 'ok',
      details: { status: 'authorization_required', authorizationServer: url.origin },
    });
    return {
      status: 'authorization_required',
      authorizationUrl: url.toString(),
      expiresAt: expiresAt.toISOString(),
    };
  }

  private async connectFailed(orgId: string, spec: PluginSpec, actor: string, err: unknown): Promise<never> {
    const refused = egressRefusal(err);
    const reason = safeReason(refused ?? err);
    await this.o.store.patch(orgId, spec.pluginKey, { status: 'failed', lastError: reason });
    this.o.audit.record({
      organizationId: orgId,
      actor,
      action: 'oauth.failed',
      pluginId: spec.pluginId,
      outcome: 'error',
      details: { step: 'connect', reason },
    });
    if (refused) throw refused;
    throw new AuthorizationFailedError(`Could not start authorization of plugin ${spec.pluginId}: ${reason}`);
  }

  /** The browser's return from the authorization server: exchanges `code` for tokens of the org bound to `state`. */
  async callback(input: {
    state: string;
    code?: string;
    error?: string;
    errorDescription?: string;
  }): Promise<{ orgId: string; pluginId: string }> {
    const record = await this.o.store.byState(input.state, new Date(this.now()));
    if (!record)
      throw new AuthorizationFailedError(
        'Unknown or expired authorization state: start again with plugins.connect',
      );
    const spec = this.o.specByKey(record.pluginKey);
    if (!spec) throw new AuthorizationFailedError('The plugin of this authorization no longer exists');
    const orgId = record.organizationId;
    if (input.error !== undefined || input.code === undefined) {
      const reason = `${input.error ?? 'no code'}${input.errorDescription ? `: ${input.errorDescription.slice(0, 200)}` : ''}`;
      await this.callbackFailed(orgId, spec, 'callback', reason);
      throw new AuthorizationFailedError(
        `Authorization of plugin ${spec.pluginId} was not granted (${reason})`,
      );
    }
    const { url, values, fromConfiguration } = await this.o.endpoint(orgId, spec);
    const fetchFn = this.o.fetchFor(orgId, spec, fromConfiguration ?? false);
    const provider = this.provider(orgId, spec, url, values, fetchFn, { mode: 'connect' });
    try {
      const result = await auth(provider, {
        serverUrl: url,
        authorizationCode: input.code,
        fetchFn,
      });
      if (result !== 'AUTHORIZED') throw new Error('the authorization server did not issue tokens');
    } catch (err) {
      const reason = safeReason(err);
      await this.callbackFailed(orgId, spec, 'token', reason);
      throw new AuthorizationFailedError(`Token exchange for plugin ${spec.pluginId} failed: ${reason}`);
    }
    await this.o.store.patch(orgId, spec.pluginKey, {
      state: null,
      codeVerifier: null,
      status: 'connected',
      requestedScope: null,
    });
    this.forgetRuntime(orgId, spec);
    this.o.audit.record({
      organizationId: orgId,
      actor: 'oauth-callback',
      action: 'oauth.callback',
      pluginId: spec.pluginId,
      outcome: 'ok',
      details: {},
    });
    return { orgId, pluginId: spec.pluginId };
  }

  /** Records a failed callback step: the pending authorization is dropped, the failure audited. */
  private async callbackFailed(orgId: string, spec: PluginSpec, step: string, reason: string): Promise<void> {
    await this.o.store.patch(orgId, spec.pluginKey, {
      status: 'failed',
      lastError: reason,
      state: null,
      codeVerifier: null,
    });
    this.o.audit.record({
      organizationId: orgId,
      actor: 'oauth-callback',
      action: 'oauth.failed',
      pluginId: spec.pluginId,
      outcome: 'error',
      details: { step, reason },
    });
  }

  async status(orgId: string, spec: PluginSpec): Promise<AuthStatus> {
    this.requireOauth(spec);
    const record = await this.o.store.get(orgId, spec.pluginKey);
    const now = this.now();
    const status: AuthStatus['status'] =
      record?.tokens !== undefined
        ? 'connected'
        : record?.status === 'failed'
          ? 'failed'
          : record?.pendingUntil !== undefined && record.pendingUntil.getTime() > now
            ? 'pending'
            : 'not_connected';
    return {
      method: 'oauth2',
      status,
      expiresAt: record?.tokensExpireAt?.toISOString() ?? null,
      lastError: record?.lastError ?? null,
    };
  }

  /**
   * Revokes the stored tokens at the authorization server (RFC 7009, when it advertises a
   * revocation_endpoint) and deletes them. Deleting happens even if the server cannot be reached.
   */
  async revoke(orgId: string, spec: PluginSpec, actor: string): Promise<{ revoked: boolean }> {
    const record = await this.o.store.get(orgId, spec.pluginKey);
    this.forgetRuntime(orgId, spec);
    if (!record) return { revoked: false };
    const { fromConfiguration } = await this.o
      .endpoint(orgId, spec)
      .catch(() => ({ fromConfiguration: spec.sourceType === 'custom' }));
    const fetchFn = this.o.fetchFor(orgId, spec, fromConfiguration ?? false);
    let remote: 'revoked' | 'unsupported' | 'failed' = 'unsupported';
    const metadata = record.discovery?.authorizationServerMetadata as
      { revocation_endpoint?: unknown } | undefined;
    const endpoint =
      typeof metadata?.revocation_endpoint === 'string' ? metadata.revocation_endpoint : undefined;
    const tokens = record.tokens as { access_token?: string; refresh_token?: string } | undefined;
    if (endpoint !== undefined && tokens !== undefined) {
      try {
        const client = record.clientInformation as { client_id?: string; client_secret?: string } | undefined;
        for (const [token, hint] of [
          [tokens.refresh_token, 'refresh_token'],
          [tokens.access_token, 'access_token'],
        ] as const) {
          if (token === undefined) continue;
          const body = new URLSearchParams({ token, token_type_hint: hint });
          const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
          if (client?.client_id !== undefined && client.client_secret !== undefined) {
            headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`;
          } else if (client?.client_id !== undefined) body.set('client_id', client.client_id);
          const res = await fetchFn(endpoint, {
            method: 'POST',
            headers,
            body,
            signal: AbortSignal.timeout(this.timeout()),
          });
          await res.body?.cancel();
          if (!res.ok) throw new Error(`revocation endpoint answered ${res.status}`);
        }
        remote = 'revoked';
      } catch (err) {
        remote = 'failed';
        this.o.logger.warn(
          { orgId, pluginId: spec.pluginId, reason: safeReason(err) },
          'OAuth token revocation failed; tokens deleted locally',
        );
      }
    }
    await this.o.store.delete(orgId, spec.pluginKey);
    this.o.audit.record({
      organizationId: orgId,
      actor,
      action: 'oauth.revoke',
      pluginId: spec.pluginId,
      outcome: remote === 'failed' ? 'error' : 'ok',
      details: { remote },
    });
    return { revoked: true };
  }

  private provider(
    orgId: string,
    spec: PluginSpec,
    serverUrl: string,
    values: PluginConfigValues,
    fetchFn: FetchLike,
    extra: {
      mode: 'connect' | 'runtime';
      state?: { value: string; expiresAt: Date };
      onRedirect?: (u: URL) => void;
    },
  ): HostOAuthProvider {
    const options: OAuth2AuthOptions = spec.manifest.capabilities?.mcp?.authOptions?.oauth2 ?? {};
    const secretField = options.clientSecretField;
    const secret = secretField !== undefined ? values[secretField] : undefined;
    return new HostOAuthProvider({
      store: this.o.store,
      orgId,
      pluginKey: spec.pluginKey,
      redirectUrl: this.o.redirectUrl(),
      options,
      clientSecret: typeof secret === 'string' && secret !== '' ? secret : undefined,
      serverUrl,
      fetchFn,
      onTokensSaved: (refreshed) => {
        if (extra.mode === 'runtime' && refreshed) {
          this.o.audit.record({
            organizationId: orgId,
            actor: 'system',
            action: 'oauth.refresh',
            pluginId: spec.pluginId,
            outcome: 'ok',
            details: {},
          });
        }
      },
      ...extra,
      ...(this.o.now ? { now: this.o.now } : {}),
    });
  }

  private forgetRuntime(orgId: string, spec: PluginSpec): void {
    this.runtimeProviders.delete(`${orgId}\u0000${spec.pluginKey}`);
  }

  private requireOauth(spec: PluginSpec): void {
    if (!OAuthService.uses(spec)) {
      throw new PreconditionError(
        'PLUGIN_NOT_READY',
        `Plugin ${spec.pluginId} does not use OAuth (capabilities.mcp.auth has no "oauth2")`,
      );
    }
  }

  private timeout(): number {
    return this.o.timeoutMs ?? 30_000;
  }

  private stateTtl(): number {
    return this.o.stateTtlMs ?? 600_000;
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}

/** The egress policy's refusal behind `err` (the SDK may wrap it), if any. */
function egressRefusal(err: unknown): HayError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isHayError(e) && (e.code === 'EGRESS_DENIED' || e.code === 'RESPONSE_TOO_LARGE')) return e;
  }
  return undefined;
}

/** An error's message, bounded, without URLs' query strings (which can carry codes or tokens). */
function safeReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/(https?:\/\/[^\s?#]+)[?#][^\s]*/g, '$1').slice(0, 300);
}
