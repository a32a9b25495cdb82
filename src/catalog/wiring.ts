import path from 'node:path';
import type { HostConfig } from '../config.js';
import { createGuardedFetch } from '../egress/guarded-fetch.js';
import type { EgressPolicy } from '../egress/policy.js';
import type { Logger } from '../logger.js';
import { packageRoot } from '../paths.js';
import { CatalogSource } from './catalog-source.js';
import { CatalogService, type CatalogServiceDeps } from './catalog-service.js';

/** The catalog bundled with the host: `catalog/` at the package root (one server.json per file). */
export function bundledCatalogPath(): string {
  return path.join(packageRoot(), 'catalog');
}

/**
 * Builds the marketplace catalog from the configuration: the local path (HAY_CATALOG_PATH, else the
 * bundled folder) and the optional URL (HAY_CATALOG_URL) read through an egress-guarded fetch (operator
 * allow-list applies; body capped at HAY_CATALOG_MAX_BYTES). `close()` drops the fetch's sockets. Idempotent.
 */
export function wireCatalog(deps: {
  config: HostConfig;
  logger: Logger;
  policy: EgressPolicy;
  registry: CatalogServiceDeps['registry'];
  uploads: CatalogServiceDeps['uploads'];
  assertTenantAllowed: CatalogServiceDeps['assertTenantAllowed'];
}): { service: CatalogService; close(): Promise<void> } {
  const { config, policy } = deps;
  const logger = deps.logger.child({ component: 'catalog' });
  const guarded = createGuardedFetch({
    policy,
    rules: { hosts: 'all', label: 'catalog URL' },
    maxResponseBytes: config.catalogMaxBytes,
    connectTimeoutMs: config.egressConnectTimeoutMs,
    headersTimeoutMs: config.catalogFetchTimeoutMs,
  });
  const source = new CatalogSource({
    logger,
    localPath: config.catalogPath ?? bundledCatalogPath(),
    localKind: config.catalogPath === undefined ? 'bundled' : 'file',
    url: config.catalogUrl,
    fetch: async (url, init) => (await guarded.fetch(url, init)) as Response,
    maxBytes: config.catalogMaxBytes,
    fetchTimeoutMs: config.catalogFetchTimeoutMs,
    cacheTtlMs: config.catalogCacheTtlMs,
    maxEntries: config.catalogMaxEntries,
    maxPages: 50,
    registryHost: new URL(config.npmRegistry).hostname,
  });
  const service = new CatalogService({
    logger,
    source,
    registry: deps.registry,
    uploads: deps.uploads,
    assertTenantAllowed: deps.assertTenantAllowed,
    checkRemoteUrl: async (orgId, raw) => {
      const url = new URL(raw);
      const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
      await policy.resolve(url.hostname, port, { hosts: 'all', label: `a catalog remote for org ${orgId}` });
    },
  });
  return { service, close: () => guarded.close() };
}
