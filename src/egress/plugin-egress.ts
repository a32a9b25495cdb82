import type { LookupFunction } from 'node:net';
import { EgressError } from '../errors.js';
import type { LaunchEgress, LaunchSpec, PluginSpec } from '../runtime/ports.js';
import { FORWARDER_SOURCE } from './forwarder-script.js';
import { createGuardedFetch, type GuardedFetch } from './guarded-fetch.js';
import type { EgressPolicy, EgressRules } from './policy.js';
import type { EgressProxy } from './proxy.js';

/** Paths of the bound sockets and the proxy port inside a plugin's network namespace. */
export const SANDBOX_PROXY_SOCKET = '/run/hay/egress.sock';
export const SANDBOX_PLATFORM_SOCKET = '/run/hay/platform.sock';
export const SANDBOX_PROXY_PORT = 3128;

export interface PluginEgressOptions {
  policy: EgressPolicy;
  proxy: EgressProxy;
  maxResponseBytes: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  /** The node binary that runs the in-namespace forwarder (visible inside the sandbox). */
  nodePath: string;
}

/** Egress of one remote plugin connection made for a tenant. */
export interface RemoteEgress {
  /** Resolves and checks the URL's host once, so a refused URL fails before any transport is tried. */
  preflight(url: string): Promise<void>;
  /** A fresh guarded fetch for one transport attempt (close it with the connection). */
  fetch(): GuardedFetch;
  /** Socket options for WebSocket: a checking `lookup` and a frame cap. Throws for a refused IP literal. */
  webSocket(url: URL): { lookup: LookupFunction; maxPayloadBytes: number };
}

/** The network plan of one local launch; `close()` releases its proxy listeners (idempotent). */
export interface LocalEgress {
  network: LaunchSpec['network'];
  egress?: LaunchEgress;
  close(): Promise<void>;
}

/**
 * Decides, per plugin, which outbound traffic is tenant traffic and applies the egress policy to it.
 * Remote: a custom plugin's URL, or a core plugin's URL taken from the organization's configuration,
 * goes through a guarded fetch; a core manifest's own URL is trusted. Local: a plugin with no network
 * and no platform API permission gets nothing; a custom plugin that declares any, or a core plugin with
 * a `url` configuration field (the tenant chooses where it connects), goes through the proxy with its
 * manifest hosts (`all` = any public host); other core plugins keep the host network.
 */
export class PluginEgress {
  constructor(private readonly o: PluginEgressOptions) {}

  remote(
    orgId: string,
    spec: PluginSpec,
    endpoint: { fromConfiguration: boolean },
  ): RemoteEgress | undefined {
    if (spec.sourceType === 'core' && !endpoint.fromConfiguration) return undefined;
    const rules: EgressRules = { hosts: 'all', label: `plugin ${spec.pluginId} (org ${orgId})` };
    const { policy } = this.o;
    return {
      preflight: async (raw) => {
        const url = new URL(raw);
        if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol))
          throw new EgressError('EGRESS_DENIED', `Egress denied: ${url.protocol} URLs are not allowed`);
        await policy.resolve(url.hostname, portOf(url), rules);
      },
      fetch: () =>
        createGuardedFetch({
          policy,
          rules,
          maxResponseBytes: this.o.maxResponseBytes,
          connectTimeoutMs: this.o.connectTimeoutMs,
          headersTimeoutMs: this.o.headersTimeoutMs,
        }),
      webSocket: (url) => {
        const port = portOf(url);
        const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
        policy.checkHostName(host, port, rules);
        // IP literals skip lookup: check them here.
        if (/^[\d.]+$/.test(host) || host.includes(':')) policy.checkAddress(host, port, rules);
        const lookup: LookupFunction = (hostname, options, callback) => {
          policy.resolve(hostname, port, rules).then(
            (t) => {
              if (options.all) callback(null, [{ address: t.address, family: t.family }]);
              else callback(null, t.address, t.family);
            },
            (err: unknown) => callback(err as NodeJS.ErrnoException, '', 0),
          );
        };
        return { lookup, maxPayloadBytes: this.o.maxResponseBytes };
      },
    };
  }

  async local(orgId: string, spec: PluginSpec): Promise<LocalEgress> {
    const network = spec.manifest.permissions?.network;
    const apis = spec.manifest.permissions?.api?.length ?? 0;
    const hosts = network?.hosts ?? [];
    const wantsNetwork = (network?.all ?? false) || hosts.length > 0;
    const none: LocalEgress = { network: { all: false, hosts: [] }, close: () => Promise.resolve() };
    if (!wantsNetwork && apis === 0) return none;
    const tenantDirected = Object.values(spec.manifest.configSchema ?? {}).some((f) => f.type === 'url');
    if (spec.sourceType === 'core' && !tenantDirected)
      return { network: { all: (network?.all ?? false) || apis > 0, hosts }, close: () => Promise.resolve() };
    const rules: EgressRules = {
      hosts: network?.all ? 'all' : hosts,
      label: `plugin ${spec.pluginId} (org ${orgId})`,
    };
    const instance = await this.o.proxy.open({ orgId, pluginId: spec.pluginId, rules });
    const nodePath = this.o.nodePath;
    const egress: LaunchEgress = {
      namespace: (env) => {
        const added = proxyEnv(`http://127.0.0.1:${SANDBOX_PROXY_PORT}`);
        const pairs = [`${SANDBOX_PROXY_PORT}=${SANDBOX_PROXY_SOCKET}`];
        const api = parseUrl(env.HAY_API_URL);
        if (api) {
          let port = api.port === '' ? 80 : Number(api.port);
          if (port === SANDBOX_PROXY_PORT) port += 1;
          added.HAY_API_URL = `http://127.0.0.1:${port}${api.pathname.replace(/\/$/, '')}`;
          pairs.push(`${port}=${SANDBOX_PLATFORM_SOCKET}`);
          // the platform port is forwarded, not proxied
          added.NO_PROXY = added.no_proxy = `127.0.0.1:${port}`;
        }
        return {
          binds: [
            { host: instance.proxySocket, sandbox: SANDBOX_PROXY_SOCKET },
            { host: instance.platformSocket, sandbox: SANDBOX_PLATFORM_SOCKET },
          ],
          env: added,
          argvPrefix: [nodePath, '-e', FORWARDER_SOURCE, '--', ...pairs, '--'],
        };
      },
      hostNetwork: async (env) => {
        const added = proxyEnv(await instance.tcpProxyUrl());
        const api = parseUrl(env.HAY_API_URL);
        if (api) added.NO_PROXY = added.no_proxy = api.host;
        return added;
      },
    };
    return { network: { all: false, hosts }, egress, close: () => instance.close() };
  }
}

function parseUrl(raw: string | undefined): URL | undefined {
  if (raw === undefined) return undefined;
  try {
    return new URL(raw);
  } catch {
    return undefined;
  }
}

function proxyEnv(url: string): Record<string, string> {
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    NO_PROXY: '',
    no_proxy: '',
    NODE_USE_ENV_PROXY: '1',
  };
}

function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80;
}
