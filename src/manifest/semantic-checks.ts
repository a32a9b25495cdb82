import { tryParseCommandLine } from './command.js';
import type { ConfigField, HayPluginManifest } from './types.js';

/** One rule a schema-valid manifest breaks: where (JSON pointer) and what (text starting with the rule). */
export interface ManifestProblem {
  pointer: string;
  rule: string;
}

/** Names the host sets itself or that change how processes load code; plugins may not claim them. */
const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([
  'PATH',
  'HOME',
  'NODE_OPTIONS',
  'NODE_PATH',
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'LD_AUDIT',
  'DYLD_INSERT_LIBRARIES',
  'DYLD_LIBRARY_PATH',
]);
const RESERVED_ENV_PREFIX = 'HAY_';

export function isReservedEnvName(name: string): boolean {
  return RESERVED_ENV_NAMES.has(name) || name.startsWith(RESERVED_ENV_PREFIX);
}

const COMMAND_FIELDS = ['startCommand', 'installCommand', 'buildCommand'] as const;

/** Escapes one JSON-pointer segment (RFC 6901). */
export function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Operator ceilings for manifest `runtime` settings (config `manifestMax*`): a manifest asking for more
 * is invalid, and the problem names the ceiling and its variable.
 */
export interface RuntimeCeilings {
  memoryMb: number;
  cpuPercent: number;
  maxProcesses: number;
  maxOpenFiles: number;
  maxConcurrentInstances: number;
  idleTimeoutMs: number;
  rateLimitPerMinute: number;
  warmInstances: number;
}

const CEILING_CHECKS: readonly {
  pointer: string;
  get: (m: HayPluginManifest) => number | undefined;
  ceiling: keyof RuntimeCeilings;
  env: string;
}[] = [
  {
    pointer: '/runtime/limits/memoryMb',
    get: (m) => m.runtime?.limits?.memoryMb,
    ceiling: 'memoryMb',
    env: 'HAY_MANIFEST_MAX_MEMORY_MB',
  },
  {
    pointer: '/runtime/limits/cpuPercent',
    get: (m) => m.runtime?.limits?.cpuPercent,
    ceiling: 'cpuPercent',
    env: 'HAY_MANIFEST_MAX_CPU_PERCENT',
  },
  {
    pointer: '/runtime/limits/maxProcesses',
    get: (m) => m.runtime?.limits?.maxProcesses,
    ceiling: 'maxProcesses',
    env: 'HAY_MANIFEST_MAX_PROCESSES',
  },
  {
    pointer: '/runtime/limits/maxOpenFiles',
    get: (m) => m.runtime?.limits?.maxOpenFiles,
    ceiling: 'maxOpenFiles',
    env: 'HAY_MANIFEST_MAX_OPEN_FILES',
  },
  {
    pointer: '/runtime/maxConcurrentInstances',
    get: (m) => m.runtime?.maxConcurrentInstances,
    ceiling: 'maxConcurrentInstances',
    env: 'HAY_MANIFEST_MAX_CONCURRENT_INSTANCES',
  },
  {
    pointer: '/runtime/idleTimeoutMs',
    get: (m) => m.runtime?.idleTimeoutMs,
    ceiling: 'idleTimeoutMs',
    env: 'HAY_MANIFEST_MAX_IDLE_TIMEOUT_MS',
  },
  {
    pointer: '/runtime/rateLimitPerMinute',
    get: (m) => m.runtime?.rateLimitPerMinute,
    ceiling: 'rateLimitPerMinute',
    env: 'HAY_MANIFEST_MAX_RATE_LIMIT_PER_MINUTE',
  },
  {
    pointer: '/runtime/warmInstances',
    get: (m) => m.runtime?.warmInstances,
    ceiling: 'warmInstances',
    env: 'HAY_MANIFEST_MAX_WARM_INSTANCES',
  },
];

/**
 * Rules JSON Schema cannot express. Runs only on schema-valid manifests, so shapes are as typed.
 * Returns problems in document order; empty when the manifest is fine. With `ceilings`, every
 * `runtime` limit above the operator's ceiling is a problem naming the ceiling.
 */
export function semanticProblems(manifest: HayPluginManifest, ceilings?: RuntimeCeilings): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  for (const c of ceilings ? CEILING_CHECKS : []) {
    const value = c.get(manifest);
    const max = ceilings?.[c.ceiling];
    if (value !== undefined && max !== undefined && value > max)
      problems.push({
        pointer: c.pointer,
        rule: `is ${value}, above this host's ceiling of ${max} (${c.env}); ask the operator or lower it`,
      });
  }
  const mcp = manifest.capabilities?.mcp;

  const firstTool = new Map<string, number>();
  (mcp?.tools ?? []).forEach((tool, index) => {
    const first = firstTool.get(tool.name);
    if (first === undefined) firstTool.set(tool.name, index);
    else {
      problems.push({
        pointer: `/capabilities/mcp/tools/${index}/name`,
        rule: `duplicates tool name ${JSON.stringify(tool.name)} (already declared at /capabilities/mcp/tools/${first}/name)`,
      });
    }
  });

  for (const field of COMMAND_FIELDS) {
    const cmd = mcp?.[field];
    if (cmd === undefined) continue;
    const result = tryParseCommandLine(cmd);
    if ('problem' in result) problems.push({ pointer: `/capabilities/mcp/${field}`, rule: result.problem });
  }

  if (mcp !== undefined) {
    const transports = (mcp.transport ?? '').split('|').filter((t) => t !== '');
    if (mcp.connection?.type === 'remote') {
      if (transports.length > 0 && !transports.some((t) => t !== 'stdio'))
        problems.push({
          pointer: '/capabilities/mcp/transport',
          rule: 'a remote server needs a network transport: use "http", "sse", "websocket" or alternatives like "http|sse" (stdio is for servers the host starts)',
        });
    } else if (mcp.startCommand === undefined) {
      problems.push({
        pointer: '/capabilities/mcp',
        rule: `declares a local ${transports.includes('stdio') ? 'stdio ' : ''}server but no startCommand, so the host has nothing to start: add "startCommand" (e.g. "node dist/index.js"), or "connection": {"type": "remote", "url": ...} for a server that runs elsewhere`,
      });
    }
  }

  const config = manifest.configSchema ?? {};
  const headers = mcp?.connection?.headers ?? {};
  for (const [header, value] of Object.entries(headers)) {
    for (const match of value.matchAll(/\$\{config\.([^}]*)\}/g)) {
      const name = match[1] ?? '';
      if (!Object.hasOwn(config, name)) {
        problems.push({
          pointer: `/capabilities/mcp/connection/headers/${pointerSegment(header)}`,
          rule: `references \${config.${name}} but configSchema has no field ${JSON.stringify(name)}`,
        });
      }
    }
  }

  (manifest.permissions?.env ?? []).forEach((name, index) => {
    if (isReservedEnvName(name)) {
      problems.push({ pointer: `/permissions/env/${index}`, rule: reservedEnvRule(name) });
    }
  });

  const envOwner = new Map<string, string>();
  for (const [key, field] of Object.entries(config)) {
    const base = `/configSchema/${pointerSegment(key)}`;
    if (field.env !== undefined) {
      const owner = envOwner.get(field.env);
      if (isReservedEnvName(field.env))
        problems.push({ pointer: `${base}/env`, rule: reservedEnvRule(field.env) });
      else if (owner !== undefined) {
        problems.push({
          pointer: `${base}/env`,
          rule: `${JSON.stringify(field.env)} is already used by configSchema field ${JSON.stringify(owner)}`,
        });
      } else envOwner.set(field.env, key);
    }
    const defaultProblem = checkDefault(field);
    if (defaultProblem !== undefined) problems.push({ pointer: `${base}/default`, rule: defaultProblem });
  }

  const firstRoute = new Map<string, number>();
  (manifest.capabilities?.api?.routes ?? []).forEach((route, index) => {
    const key = `${route.method} ${route.path}`;
    const first = firstRoute.get(key);
    if (first === undefined) firstRoute.set(key, index);
    else
      problems.push({
        pointer: `/capabilities/api/routes/${index}`,
        rule: `duplicates route ${key} (already declared at /capabilities/api/routes/${first})`,
      });
    const field = route.auth?.secretConfigField;
    if (field !== undefined && !Object.hasOwn(config, field))
      problems.push({
        pointer: `/capabilities/api/routes/${index}/auth/secretConfigField`,
        rule: `names ${JSON.stringify(field)} but configSchema has no such field`,
      });
  });
  problems.push(...authProblems(manifest));

  Object.keys(manifest.dependencies ?? {}).forEach((dep) => {
    if (dep === manifest.id) {
      problems.push({
        pointer: `/dependencies/${pointerSegment(dep)}`,
        rule: 'a plugin cannot depend on itself',
      });
    }
  });

  return problems;
}

function authProblems(manifest: HayPluginManifest): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const mcp = manifest.capabilities?.mcp;
  const methods = mcp?.auth ?? [];
  const options = mcp?.authOptions ?? {};
  const config = manifest.configSchema ?? {};
  const base = '/capabilities/mcp/authOptions';
  for (const method of ['apiKey', 'jwt', 'oauth2'] as const) {
    if (options[method] !== undefined && !methods.includes(method)) {
      problems.push({
        pointer: `${base}/${method}`,
        rule: `configures ${method} but capabilities.mcp.auth does not list "${method}"`,
      });
    }
  }
  const secretField = (name: string, pointer: string) => {
    const field = config[name];
    if (field === undefined) {
      problems.push({
        pointer,
        rule: `names configSchema field ${JSON.stringify(name)}, which does not exist`,
      });
    } else if (field.encrypted !== true) {
      problems.push({
        pointer,
        rule: `names configSchema field ${JSON.stringify(name)}, which must be "encrypted": true to hold a credential`,
      });
    }
  };
  if (options.apiKey !== undefined) secretField(options.apiKey.field, `${base}/apiKey/field`);
  for (const method of ['apiKey', 'jwt'] as const) {
    const env = options[method]?.env;
    if (env !== undefined && isReservedEnvName(env)) {
      problems.push({ pointer: `${base}/${method}/env`, rule: reservedEnvRule(env) });
    }
  }
  if (methods.includes('oauth2')) {
    const secret = options.oauth2?.clientSecretField;
    if (secret !== undefined) secretField(secret, `${base}/oauth2/clientSecretField`);
    if (secret !== undefined && options.oauth2?.clientId === undefined) {
      problems.push({ pointer: `${base}/oauth2/clientSecretField`, rule: 'needs oauth2.clientId as well' });
    }
  }
  return problems;
}

function reservedEnvRule(name: string): string {
  return `uses the reserved environment variable name ${JSON.stringify(name)} (PATH, HOME, NODE_OPTIONS, NODE_PATH, LD_*/DYLD_* loader variables and names starting with ${RESERVED_ENV_PREFIX} are set by the host); choose another name`;
}

function checkDefault(field: ConfigField): string | undefined {
  const value = field.default;
  if (value === undefined) return undefined;
  const expected = field.type === 'number' ? 'number' : field.type === 'boolean' ? 'boolean' : 'string';
  if (typeof value !== expected) {
    return `must be a ${expected} because the field type is ${JSON.stringify(field.type)} (got ${JSON.stringify(value)})`;
  }
  if (field.type === 'select' && field.options !== undefined && !field.options.includes(value as string)) {
    return `must be one of the field's options (${field.options.map((o) => JSON.stringify(o)).join(', ')})`;
  }
  if (field.type === 'url' && !URL.canParse(value as string)) {
    return `must be an absolute URL because the field type is "url" (got ${JSON.stringify(value)})`;
  }
  return undefined;
}
