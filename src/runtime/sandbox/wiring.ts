import os from 'node:os';
import path from 'node:path';
import type { HostConfig } from '../../config.js';
import type { Logger } from '../../logger.js';
import type { ResourceLimits } from '../../manifest/types.js';
import { packageRoot } from '../../paths.js';
import { BASE_ENV_ALLOW_LIST, TENANT_PATH } from '../plugin-env.js';
import { ReadPathPolicy } from './read-paths.js';
import { createSandbox, type LayeredSandbox, type TenantPolicy } from './sandbox.js';

/** What the sandbox area hands the composition root. */
export interface SandboxWiring {
  sandbox: LayeredSandbox;
  /** The same filesystem.read rules the sandbox applies at launch, for upload and enable validation. */
  readPaths: ReadPathPolicy;
  /** Installer options for tenant install/build steps (see InstallerOptions). */
  tenantInstall: {
    sandbox: LayeredSandbox;
    tenantEnv: Record<string, string>;
    tenantLimits: Required<ResourceLimits>;
    registryHost: string;
    hostPaths: string[];
  };
  /** For /healthz: the mode, the active layers and what happens to tenant code. */
  health(): {
    mode: HostConfig['sandbox'];
    active: string[];
    tenantCode: TenantPolicy['tenantCode'];
    missing: string[];
  };
}

/**
 * Builds the plugin sandbox from the configuration (detecting layers once) and the pieces other areas need:
 * the filesystem.read policy and the tenant install environment. `hideLayers` pretends layers are absent
 * (tests of a machine without bubblewrap).
 */
export async function wireSandbox(
  config: HostConfig,
  deps: {
    logger: Logger;
    hostEnv: NodeJS.ProcessEnv;
    hideLayers?: readonly string[];
    /** More host folders plugins see read-only at the same path (the host packages offered as peers). */
    extraReadOnlyPaths?: readonly string[];
  },
): Promise<SandboxWiring> {
  const protectedPaths = [config.dataDir, config.pluginsDir];
  const sandbox = await createSandbox({
    logger: deps.logger,
    mode: config.sandbox,
    dataDir: config.dataDir,
    pluginDataRoot: path.join(config.dataDir, 'plugin-data'),
    installHomeRoot: path.join(config.dataDir, 'install-home'),
    extraReadOnlyPaths: [path.join(packageRoot(), 'node_modules'), ...(deps.extraReadOnlyPaths ?? [])],
    protectedPaths,
    readAllowList: config.filesystemReadAllow,
    allowUnsandboxedTenantCode: config.allowUnsandboxedTenantCode,
    ...(deps.hideLayers ? { hideLayers: deps.hideLayers } : {}),
  });
  const registry = new URL(config.npmRegistry);
  return {
    sandbox,
    readPaths: new ReadPathPolicy({ allow: config.filesystemReadAllow, protectedPaths }),
    tenantInstall: {
      sandbox,
      tenantEnv: tenantInstallEnv(deps.hostEnv, config.npmRegistry),
      tenantLimits: {
        memoryMb: Math.max(config.sandboxMemoryMb, 1024),
        cpuPercent: config.sandboxCpuPercent,
        maxProcesses: Math.max(config.sandboxMaxProcesses, 128),
        maxOpenFiles: Math.max(config.sandboxMaxOpenFiles, 4096),
      },
      registryHost: registry.hostname,
      hostPaths: [config.dataDir, config.pluginsDir, packageRoot(), process.cwd(), os.homedir()],
    },
    health() {
      const tenant = sandbox.tenantPolicy();
      return {
        mode: config.sandbox,
        active: sandbox.describe().active,
        tenantCode: tenant.tenantCode,
        missing: tenant.missing.map((m) => m.layer),
      };
    },
  };
}

/**
 * The complete environment of a tenant install/build step: the plugin base allow-list, the configured
 * registry, npm's noise off, and the host's proxy variables (how this machine reaches the registry). No
 * npm_config_* of the host (they may carry registry credentials) and nothing else.
 */
export function tenantInstallEnv(hostEnv: NodeJS.ProcessEnv, registry: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [
    ...BASE_ENV_ALLOW_LIST.filter((n) => n !== 'PATH'),
    'HTTP_PROXY',
    'HTTPS_PROXY',
    'NO_PROXY',
  ]) {
    const v = hostEnv[name];
    if (v !== undefined) env[name] = v;
  }
  env.PATH = TENANT_PATH;
  env.npm_config_registry = registry;
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  return env;
}
