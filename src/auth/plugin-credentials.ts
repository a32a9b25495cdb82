import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { PluginConfigValues, PluginSpec } from '../runtime/ports.js';
import type { JwtIssuer } from './jwt-issuer.js';
import { OAuthService } from './oauth-service.js';

export const DEFAULT_API_KEY_ENV = 'HAY_AUTH_API_KEY';
export const DEFAULT_JWT_ENV = 'HAY_AUTH_JWT';
const DEFAULT_JWT_TTL_SECONDS = 300;

/** What the authentication step adds to a remote connection. */
export interface RemoteCredentials {
  /** Fixed headers (API key). */
  headers: Record<string, string>;
  /** Headers computed per request (a JWT that is re-signed before it expires). */
  perRequestHeaders?: () => Record<string, string>;
  /** OAuth: the SDK transport authorizes with this provider. */
  authProvider?: OAuthClientProvider;
}

/**
 * The guide's `setupAuthentication`: turns an organization's configuration into what the plugin's
 * declared `capabilities.mcp.auth` methods need. Local plugins get environment variables (API key, a JWT
 * valid for the instance's first `ttlSeconds`); remote plugins get headers (the JWT re-signed per request
 * once half its lifetime has passed) and, for oauth2, the org's OAuth provider.
 */
export class PluginCredentials {
  constructor(private readonly o: { jwt: JwtIssuer; oauth: OAuthService }) {}

  localEnv(orgId: string, spec: PluginSpec, values: PluginConfigValues): Record<string, string> {
    const env: Record<string, string> = {};
    const methods = spec.manifest.capabilities?.mcp?.auth ?? [];
    const options = spec.manifest.capabilities?.mcp?.authOptions ?? {};
    if (methods.includes('apiKey') && options.apiKey) {
      const key = values[options.apiKey.field];
      if (key !== undefined && key !== '') env[options.apiKey.env ?? DEFAULT_API_KEY_ENV] = String(key);
    }
    if (methods.includes('jwt')) {
      env[options.jwt?.env ?? DEFAULT_JWT_ENV] = this.jwtFor(orgId, spec).token;
    }
    return env;
  }

  async remote(orgId: string, spec: PluginSpec, values: PluginConfigValues): Promise<RemoteCredentials> {
    const out: RemoteCredentials = { headers: {} };
    const methods = spec.manifest.capabilities?.mcp?.auth ?? [];
    const options = spec.manifest.capabilities?.mcp?.authOptions ?? {};
    if (methods.includes('apiKey') && options.apiKey) {
      const key = values[options.apiKey.field];
      if (key !== undefined && key !== '') {
        out.headers[options.apiKey.header ?? 'Authorization'] =
          `${options.apiKey.prefix ?? (options.apiKey.header === undefined ? 'Bearer ' : '')}${String(key)}`;
      }
    }
    if (methods.includes('jwt')) {
      const header = options.jwt?.header ?? 'Authorization';
      const prefix = header.toLowerCase() === 'authorization' ? 'Bearer ' : '';
      let current = this.jwtFor(orgId, spec);
      const ttlMs = (options.jwt?.ttlSeconds ?? DEFAULT_JWT_TTL_SECONDS) * 1000;
      out.perRequestHeaders = () => {
        if (current.expiresAt - Date.now() < ttlMs / 2) current = this.jwtFor(orgId, spec);
        return { [header]: `${prefix}${current.token}` };
      };
    }
    if (OAuthService.uses(spec)) out.authProvider = await this.o.oauth.runtimeProvider(orgId, spec);
    return out;
  }

  private jwtFor(orgId: string, spec: PluginSpec): { token: string; expiresAt: number } {
    const options = spec.manifest.capabilities?.mcp?.authOptions?.jwt;
    return this.o.jwt.sign({
      orgId,
      pluginId: spec.pluginId,
      audience: options?.audience ?? spec.pluginId,
      ttlSeconds: options?.ttlSeconds ?? DEFAULT_JWT_TTL_SECONDS,
    });
  }
}
