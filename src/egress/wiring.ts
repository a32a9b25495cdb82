import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HostConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { PluginEgress } from './plugin-egress.js';
import { EgressPolicy, parseAllowList, type Resolver } from './policy.js';
import { EgressProxy } from './proxy.js';

export interface EgressWiring {
  policy: EgressPolicy;
  proxy: EgressProxy;
  /** What the connection factory consults for every remote connection and local launch. */
  plugins: PluginEgress;
  /** Closes every instance proxy. Idempotent. */
  close(): Promise<void>;
}

/**
 * Builds the egress area from the host configuration. `platformTarget` is where the host's own API
 * listens (read per request: the port is known only once listening). `resolve` replaces DNS (tests).
 */
export function wireEgress(deps: {
  config: HostConfig;
  logger: Logger;
  platformTarget: () => { host: string; port: number };
  resolve?: Resolver;
}): EgressWiring {
  const { config } = deps;
  const allow = parseAllowList(config.egressAllow);
  if (allow.length > 0)
    deps.logger.info(
      { allow: allow.map((a) => a.text) },
      'egress: operator allows these internal destinations',
    );
  const policy = new EgressPolicy({
    allow,
    dnsCacheMs: config.egressDnsCacheMs,
    ...(deps.resolve ? { resolve: deps.resolve } : {}),
  });
  const proxy = new EgressProxy({
    policy,
    logger: deps.logger,
    runDir: socketDir(config.dataDir),
    maxConnectionsPerInstance: config.egressMaxConnectionsPerInstance,
    idleTimeoutMs: config.egressIdleTimeoutMs,
    connectTimeoutMs: config.egressConnectTimeoutMs,
    platformTarget: deps.platformTarget,
  });
  const plugins = new PluginEgress({
    policy,
    proxy,
    maxResponseBytes: config.egressMaxResponseBytes,
    connectTimeoutMs: config.egressConnectTimeoutMs,
    headersTimeoutMs: config.callTimeoutMs,
    nodePath: process.execPath,
  });
  return { policy, proxy, plugins, close: () => proxy.close() };
}

/** `<dataDir>/run/egress`, or a per-data-dir folder under the temp dir when that would make socket paths too long. */
function socketDir(dataDir: string): string {
  const dir = path.join(dataDir, 'run', 'egress');
  if (dir.length <= 80) return dir;
  const id = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  return path.join(tmpdir(), `hay-egress-${id}`);
}
