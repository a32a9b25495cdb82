import { randomBytes } from 'node:crypto';
import {
  auth,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
} from '@modelcontextprotocol/sdk/client/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import type { OAuth2AuthOptions } from '../manifest/types.js';
import type { OAuthStore } from './oauth-store.js';

export interface HostOAuthProviderOptions {
  store: OAuthStore;
  orgId: string;
  pluginKey: string;
  /** The host's callback, e.g. https://hay.example/v1/oauth/callback. */
  redirectUrl: string;
  options: OAuth2AuthOptions;
  /** Decrypted secret of a pre-registered client (options.clientSecretField), when configured. */
  clientSecret: string | undefined;
  /**
   * `connect`: an org admin is authorizing: the verifier and `state` are stored and the authorization URL
   * handed to `onRedirect`. `runtime`: an instance is connecting: stored tokens are used and refreshed, and
   * a needed authorization only marks the record (nothing is stored for a flow nobody started).
   */
  mode: 'connect' | 'runtime';
  state?: { value: string; expiresAt: Date };
  onRedirect?: (url: URL) => void;
  onTokensSaved?: (refreshed: boolean) => void;
  /** The remote MCP server (for refreshes the provider starts itself). */
  serverUrl: string;
  /** Every request to authorization servers goes through this (the tenant egress policy). */
  fetchFn: FetchLike;
  /** Refresh this long before the access token expires. Default 60 s. */
  refreshSkewMs?: number;
  now?: () => number;
}

/**
 * The SDK's OAuthClientProvider for one organization's authorization of one remote plugin, backed by the
 * encrypted plugin_oauth row. Client registration preference (the SDK applies it): a pre-registered
 * clientId, else a Client ID Metadata Document URL, else dynamic registration.
 */
export class HostOAuthProvider implements OAuthClientProvider {
  readonly clientMetadataUrl: string | undefined;
  private cachedTokens: { value: OAuthTokens | undefined; until: number } | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly o: HostOAuthProviderOptions) {
    this.clientMetadataUrl = o.options.clientId === undefined ? o.options.clientMetadataUrl : undefined;
  }

  get redirectUrl(): string {
    return this.o.redirectUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    const scope = this.o.options.scopes?.join(' ');
    return {
      client_name: 'Hay plugin host',
      redirect_uris: [this.o.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(scope ? { scope } : {}),
    };
  }

  /** The stored authorization's state (connect mode); runtime mode starts no flow, so any value does. */
  state(): string {
    return this.o.state?.value ?? randomBytes(16).toString('base64url');
  }

  async clientInformation(): Promise<OAuthClientInformationMixed | undefined> {
    if (this.o.options.clientId !== undefined) {
      return {
        client_id: this.o.options.clientId,
        ...(this.o.clientSecret !== undefined ? { client_secret: this.o.clientSecret } : {}),
      };
    }
    const record = await this.o.store.get(this.o.orgId, this.o.pluginKey);
    return record?.clientInformation as OAuthClientInformationMixed | undefined;
  }

  async saveClientInformation(info: OAuthClientInformationMixed): Promise<void> {
    if (this.o.options.clientId !== undefined) return;
    await this.o.store.patch(this.o.orgId, this.o.pluginKey, {
      clientInformation: info as unknown as Record<string, unknown>,
    });
  }

  /**
   * The stored tokens. In runtime mode, tokens that expire within the refresh skew are refreshed first
   * (once at a time; a failed refresh leaves the old tokens for the server to judge).
   */
  async tokens(): Promise<OAuthTokens | undefined> {
    if (this.o.mode === 'connect') return undefined;
    const now = this.now();
    if (!this.cachedTokens || this.cachedTokens.until <= now) {
      const record = await this.o.store.get(this.o.orgId, this.o.pluginKey);
      this.cachedTokens = { value: record?.tokens as OAuthTokens | undefined, until: now + 5_000 };
      this.expiry = record?.tokensExpireAt?.getTime();
    }
    const value = this.cachedTokens.value;
    const skew = this.o.refreshSkewMs ?? 60_000;
    if (
      this.o.mode === 'runtime' &&
      this.refreshing === undefined &&
      value?.refresh_token !== undefined &&
      this.expiry !== undefined &&
      this.expiry - now < skew
    ) {
      this.refreshing = auth(this, { serverUrl: this.o.serverUrl, fetchFn: this.o.fetchFn })
        .then(() => undefined)
        .catch(() => undefined)
        .finally(() => {
          this.refreshing = undefined;
        });
      await this.refreshing;
      return this.cachedTokens?.value;
    }
    return value;
  }

  private expiry: number | undefined;

  async saveTokens(tokens: OAuthTokens): Promise<void> {
    const expiresAt =
      typeof tokens.expires_in === 'number' ? new Date(this.now() + tokens.expires_in * 1000) : null;
    const had = this.cachedTokens?.value !== undefined;
    await this.o.store.patch(this.o.orgId, this.o.pluginKey, {
      tokens: tokens as unknown as Record<string, unknown>,
      tokensExpireAt: expiresAt,
      status: 'connected',
      lastError: null,
      ...(this.o.mode === 'connect' ? { state: null, codeVerifier: null } : {}),
    });
    this.cachedTokens = { value: tokens, until: this.now() + 5_000 };
    this.expiry = expiresAt?.getTime();
    this.o.onTokensSaved?.(had);
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    if (this.o.mode === 'connect') {
      this.o.onRedirect?.(url);
      return;
    }
    const scope = url.searchParams.get('scope');
    await this.o.store.patch(this.o.orgId, this.o.pluginKey, { requestedScope: scope });
  }

  async saveCodeVerifier(codeVerifier: string): Promise<void> {
    if (this.o.mode !== 'connect' || !this.o.state) return;
    await this.o.store.patch(this.o.orgId, this.o.pluginKey, {
      codeVerifier,
      state: this.o.state,
      status: 'pending',
    });
  }

  async codeVerifier(): Promise<string> {
    const record = await this.o.store.get(this.o.orgId, this.o.pluginKey);
    if (record?.codeVerifier === undefined) throw new Error('no PKCE verifier stored for this authorization');
    return record.codeVerifier;
  }

  async invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): Promise<void> {
    this.cachedTokens = undefined;
    const { store, orgId, pluginKey } = this.o;
    if (scope === 'all')
      await store.patch(orgId, pluginKey, {
        clientInformation: null,
        tokens: null,
        codeVerifier: null,
        discovery: null,
      });
    else if (scope === 'client') await store.patch(orgId, pluginKey, { clientInformation: null });
    else if (scope === 'tokens') await store.patch(orgId, pluginKey, { tokens: null, tokensExpireAt: null });
    else if (scope === 'verifier') await store.patch(orgId, pluginKey, { codeVerifier: null });
    else await store.patch(orgId, pluginKey, { discovery: null });
  }

  async saveDiscoveryState(state: OAuthDiscoveryState): Promise<void> {
    await this.o.store.patch(this.o.orgId, this.o.pluginKey, {
      discovery: JSON.parse(JSON.stringify(state)) as Record<string, unknown>,
    });
  }

  async discoveryState(): Promise<OAuthDiscoveryState | undefined> {
    const record = await this.o.store.get(this.o.orgId, this.o.pluginKey);
    return record?.discovery as OAuthDiscoveryState | undefined;
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}
