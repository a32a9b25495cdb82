import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InstanceError } from '../errors.js';
import type { PlatformTokens } from '../security/platform-token.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import type { PluginCredentials } from '../auth/plugin-credentials.js';
import {
  SHARED_INSTANCE_ORG,
  type CallMetaProvider,
  type EnvProvider,
  type PluginConfigValues,
  type PluginSpec,
  type RemoteEndpointProvider,
  type RemoteEndpoint,
} from './ports.js';

/** Host variables every plugin process gets when set on the host. Nothing else is inherited. */
export const BASE_ENV_ALLOW_LIST = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'NODE_ENV'] as const;

/** PATH of tenant code: the node binary's folder and the system folders, never the host user's PATH. */
export const TENANT_PATH = [
  ...new Set([path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin']),
].join(':');

export interface PluginEnvOptions {
  settings: PluginSettingsService;
  tokens: PlatformTokens;
  /** Base URL of the host as plugins reach it (platform APIs). */
  apiUrl: string;
  /** The host's environment, read only for allow-listed names. */
  hostEnv: NodeJS.ProcessEnv;
  /** Host variables the operator lets plugins request through manifest permissions.env. */
  operatorAllowedEnv: readonly string[];
  /**
   * Per-(org, plugin) writable data folder on the host (the sandbox remaps it to /data). envFor creates it
   * (mode 0700) when missing.
   */
  dataDirFor: (orgId: string, spec: PluginSpec) => string;
  /** The authentication step (capabilities.mcp.auth); unset: no auth methods are applied. */
  credentials?: PluginCredentials;
}

/**
 * Builds a plugin process's complete environment (creating the plugin's data folder if missing): the base
 * allow-list (PATH is TENANT_PATH for custom plugins), the host variables the plugin requested AND the operator allowed, HAY_ORG_ID / HAY_PLUGIN_ID /
 * HAY_PLUGIN_DATA_DIR / HAY_API_URL / HAY_API_TOKEN (a short-lived token bound to the org, plugin and its
 * declared permissions.api), then the organization's configuration mapped through configSchema `env` names.
 * A shared instance's process (orgId SHARED_INSTANCE_ORG) gets no organization, token or configuration:
 * HAY_SHARED_INSTANCE=1, and each call's `_meta` (callMetaFor) names the organization.
 */
export class PluginEnvironment implements EnvProvider, RemoteEndpointProvider, CallMetaProvider {
  constructor(private readonly o: PluginEnvOptions) {}

  async envFor(orgId: string, spec: PluginSpec): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const name of BASE_ENV_ALLOW_LIST) {
      const v = this.o.hostEnv[name];
      if (v !== undefined) env[name] = v;
    }
    for (const name of spec.manifest.permissions?.env ?? []) {
      const v = this.o.hostEnv[name];
      if (v !== undefined && this.o.operatorAllowedEnv.includes(name)) env[name] = v;
    }
    env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
    // tenant code learns nothing of the host user's folders from PATH
    if (spec.sourceType === 'custom') env.PATH = TENANT_PATH;
    const dataDir = this.o.dataDirFor(orgId, spec);
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Could not create the data folder of plugin ${spec.pluginId} (${dataDir}): ${reason}; check that the host may write there`,
      );
    }
    env.HOME = dataDir;
    if (orgId === SHARED_INSTANCE_ORG) {
      env.HAY_SHARED_INSTANCE = '1';
      env.HAY_PLUGIN_ID = spec.pluginId;
      env.HAY_PLUGIN_DATA_DIR = dataDir;
      env.HAY_API_URL = this.o.apiUrl;
      return env;
    }
    env.HAY_ORG_ID = orgId;
    env.HAY_PLUGIN_ID = spec.pluginId;
    env.HAY_PLUGIN_DATA_DIR = dataDir;
    env.HAY_API_URL = this.o.apiUrl;
    env.HAY_API_TOKEN = (
      await this.o.tokens.issue({
        orgId,
        pluginId: spec.pluginId,
        pluginKey: spec.pluginKey,
        apis: [...(spec.manifest.permissions?.api ?? [])],
      })
    ).token;
    const values = await this.values(orgId, spec);
    for (const [name, field] of Object.entries(spec.manifest.configSchema ?? {})) {
      const v = values[name];
      if (field.env && v !== undefined) env[field.env] = String(v);
    }
    if (this.o.credentials) Object.assign(env, this.o.credentials.localEnv(orgId, spec, values));
    return env;
  }

  /**
   * `_meta` of a tools/call on a shared instance: `hay/orgId`, `hay/config` (the org's configuration values,
   * decrypted, after defaults; {} for a plugin without configSchema, read without a query) and, for a plugin
   * declaring permissions.api, `hay/apiToken` (a token bound to that org, like HAY_API_TOKEN).
   */
  async callMetaFor(orgId: string, spec: PluginSpec): Promise<Record<string, unknown>> {
    const schema = spec.manifest.configSchema ?? {};
    const config = Object.keys(schema).length > 0 ? await this.values(orgId, spec) : {};
    const apis = spec.manifest.permissions?.api ?? [];
    return {
      'hay/orgId': orgId,
      'hay/config': config,
      ...(apis.length > 0
        ? {
            'hay/apiToken': (
              await this.o.tokens.issue({
                orgId,
                pluginId: spec.pluginId,
                pluginKey: spec.pluginKey,
                apis: [...apis],
              })
            ).token,
          }
        : {}),
    };
  }

  /**
   * URL: the org's `serverUrl` configuration when the schema has one and it is set (`fromConfiguration`),
   * else the manifest's connection.url. Headers: manifest connection.headers with `${config.<field>}` replaced; a header whose
   * referenced field is unset is left out.
   */
  async endpointFor(orgId: string, spec: PluginSpec): Promise<RemoteEndpoint> {
    const { url, values, fromConfiguration } = await this.remoteUrl(orgId, spec);
    const connection = spec.manifest.capabilities?.mcp?.connection;
    const headers: Record<string, string> = {};
    for (const [name, template] of Object.entries(connection?.headers ?? {})) {
      const filled = substitute(template, values);
      if (filled !== undefined) headers[name] = filled;
    }
    if (!this.o.credentials) return { url, headers, fromConfiguration };
    const creds = await this.o.credentials.remote(orgId, spec, values);
    return {
      url,
      headers: { ...headers, ...creds.headers },
      fromConfiguration,
      ...(creds.perRequestHeaders ? { perRequestHeaders: creds.perRequestHeaders } : {}),
      ...(creds.authProvider ? { authProvider: creds.authProvider } : {}),
    };
  }

  /** The remote URL of (org, plugin) as endpointFor resolves it, with the configuration values. */
  async remoteUrl(
    orgId: string,
    spec: PluginSpec,
  ): Promise<{ url: string; values: PluginConfigValues; fromConfiguration: boolean }> {
    const values = await this.values(orgId, spec);
    const override = values.serverUrl;
    const fromConfiguration = typeof override === 'string' && override !== '';
    const url = fromConfiguration ? override : spec.manifest.capabilities?.mcp?.connection?.url;
    if (!url) throw new Error(`plugin ${spec.pluginId} has no remote URL`);
    return { url, values, fromConfiguration };
  }

  /** The organization's configuration values of `spec`, decrypted, after defaults. */
  values(orgId: string, spec: PluginSpec): Promise<PluginConfigValues> {
    return this.o.settings.runtimeValues(orgId, spec.pluginKey, spec.manifest.configSchema ?? {});
  }
}

/** How configuration values name the plugin's private data folder; expanded at start (see withDataDir). */
export const DATA_DIR_REFERENCE = '${HAY_PLUGIN_DATA_DIR}';

/**
 * The environment a plugin process gets once its data folder is known as the process sees it (`/data`
 * inside bubblewrap, the host path otherwise): HAY_PLUGIN_DATA_DIR set to `dataDir`, and every
 * `${HAY_PLUGIN_DATA_DIR}` in the other values (configuration such as MEMORY_FILE_PATH) replaced by it.
 */
export function withDataDir(env: Readonly<Record<string, string>>, dataDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env))
    out[name] = value.includes(DATA_DIR_REFERENCE) ? value.split(DATA_DIR_REFERENCE).join(dataDir) : value;
  out.HAY_PLUGIN_DATA_DIR = dataDir;
  return out;
}

/** withDataDir with the environment's own HAY_PLUGIN_DATA_DIR (launches that keep the host path). */
export function expandDataDir(env: Readonly<Record<string, string>>): Record<string, string> {
  const dir = env.HAY_PLUGIN_DATA_DIR;
  return dir === undefined ? { ...env } : withDataDir(env, dir);
}

function substitute(template: string, values: PluginConfigValues): string | undefined {
  let missing = false;
  const out = template.replace(/\$\{config\.([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined || v === '') {
      missing = true;
      return '';
    }
    return String(v);
  });
  return missing ? undefined : out;
}
