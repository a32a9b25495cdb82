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
 * Rules JSON Schema cannot express. Runs only on schema-valid manifests, so shapes are as typed.
 * Returns problems in document order; empty when the manifest is fine.
 */
export function semanticProblems(manifest: HayPluginManifest): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
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
  if (methods.includes('apiKey')) {
    if (options.apiKey === undefined) {
      problems.push({
        pointer: base,
        rule: 'needs apiKey.field (the encrypted configSchema field holding the key) because auth lists "apiKey"',
      });
    } else secretField(options.apiKey.field, `${base}/apiKey/field`);
  }
  for (const method of ['apiKey', 'jwt'] as const) {
    const env = options[method]?.env;
    if (env !== undefined && isReservedEnvName(env)) {
      problems.push({ pointer: `${base}/${method}/env`, rule: reservedEnvRule(env) });
    }
  }
  if (methods.includes('oauth2')) {
    if (mcp?.connection?.type !== 'remote') {
      problems.push({
        pointer: '/capabilities/mcp/auth',
        rule: 'lists "oauth2", which the host performs for remote servers only (connection.type "remote")',
      });
    }
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
