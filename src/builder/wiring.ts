import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AuditLog } from '../audit/audit-log.js';
import type { HostConfig } from '../config.js';
import type { EgressPolicy } from '../egress/policy.js';
import type { Logger } from '../logger.js';
import type { HostPackage } from '../registry/host-packages.js';
import { BuilderService, type BuilderDeps } from './service.js';
import { RUNTIME_PACKAGE } from './plugin-files.js';

/**
 * The runtime as a host package: the compiled `dist/src/builder` folder (engine + runtime, nothing else of
 * the host), linked into each no-code plugin's node_modules and mounted read-only in the sandbox like the
 * host's other offered packages. Undefined when dist/ has not been built.
 */
export function noCodeRuntimePackage(root: string): HostPackage | undefined {
  const dir = path.join(root, 'dist', 'src', 'builder');
  if (!existsSync(path.join(dir, 'runtime', 'main.js'))) return undefined;
  let version = '0.0.0';
  try {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: unknown };
    if (typeof pkg.version === 'string') version = pkg.version;
  } catch {
    // the host's own package.json is always there; a version only labels the link in logs
  }
  return { name: RUNTIME_PACKAGE, version, dir };
}

/** Builds the builder area (no timers, sockets or processes of its own: nothing to close). */
export function wireBuilder(deps: {
  config: HostConfig;
  logger: Logger;
  audit: AuditLog;
  registry: BuilderDeps['registry'];
  uploads: BuilderDeps['uploads'];
  versions: BuilderDeps['versions'];
  storedConfiguration: BuilderDeps['storedConfiguration'];
  policy: EgressPolicy;
  runtime: HostPackage | undefined;
}): { service: BuilderService } {
  const logger = deps.logger.child({ component: 'builder' });
  if (!deps.runtime)
    logger.warn(
      'the no-code runtime is not built (dist/src/builder missing): builder.save is refused until `npm run build`',
    );
  const service = new BuilderService({
    logger,
    audit: deps.audit,
    registry: deps.registry,
    uploads: deps.uploads,
    versions: deps.versions,
    storedConfiguration: deps.storedConfiguration,
    policy: deps.policy,
    runtimeAvailable: deps.runtime !== undefined,
    options: {
      testTimeoutMs: deps.config.builderTestTimeoutMs,
      testMaxResponseBytes: deps.config.builderTestMaxResponseBytes,
      testsPerOrg: deps.config.builderTestsPerOrg,
      connectTimeoutMs: deps.config.egressConnectTimeoutMs,
    },
  });
  return { service };
}
