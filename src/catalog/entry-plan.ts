import semver from 'semver';
import type { ConfigField, HayPluginManifest } from '../manifest/types.js';
import type {
  RegistryArgument,
  RegistryInput,
  RegistryKeyValueInput,
  RegistryPackage,
  RegistryRemote,
  ServerDetail,
} from './server-json.js';

/** How an entry becomes a plugin: `local` (an npm package run over stdio) or `remote` (an HTTP URL). */
export type CatalogInstallType = 'local' | 'remote';

/** A configuration field the installed plugin asks the organization for (from the entry's inputs). */
export interface CatalogConfigField {
  name: string;
  label: string;
  description: string | null;
  required: boolean;
  /** Stored encrypted (`isSecret` in the entry). */
  secret: boolean;
}

/** One installable form of an entry. */
export interface InstallVariant {
  type: CatalogInstallType;
  transport: 'stdio' | 'streamable-http' | 'sse';
  /** local: the npm package, pinned to an exact version. */
  package?: { identifier: string; version: string };
  /** remote: the server URL after variable defaults were filled in. */
  url?: string;
  configFields: CatalogConfigField[];
  /** The plugin folder's files for `pluginId`; `networkHosts` become permissions.network.hosts (local). */
  files(
    pluginId: string,
    options: { networkHosts: readonly string[]; source: string },
  ): Record<string, string>;
}

/** File in an installed plugin's folder naming the catalog entry it came from. */
export const ORIGIN_FILE = 'hay-catalog.json';
export interface CatalogOrigin {
  name: string;
  version: string;
  type: CatalogInstallType;
  source: string;
}

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** Variables an entry may not set: the host's own and those that change how node loads code. */
const RESERVED_ENV =
  /^(HAY_|NODE_|LD_|DYLD_|npm_config_|NPM_CONFIG_)|^(PATH|HOME|TMPDIR|HTTP_PROXY|HTTPS_PROXY|NO_PROXY)$/;

/** The plugin id an entry installs as by default: the part after the slash, as lowercase words. */
export function defaultPluginId(name: string): string {
  const tail = name.slice(name.indexOf('/') + 1);
  const id = tail
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100)
    .replace(/-+$/, '');
  return id === '' ? 'catalog-plugin' : id;
}

/** A semver for the manifest: the entry's version when it is one, else its coerced form, else 0.0.0. */
function manifestVersion(v: string): string {
  return semver.valid(v) ?? semver.coerce(v)?.version ?? '0.0.0';
}

function fieldName(raw: string): string {
  const n = raw.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 100);
  return /^[A-Za-z_]/.test(n) ? n : `_${n}`.slice(0, 100);
}

function configField(
  input: RegistryInput,
  label: string,
  env: string | undefined,
): ConfigField & { required: boolean } {
  const field: ConfigField & { required: boolean } = {
    type: 'string',
    label: label.slice(0, 200),
    required: input.isRequired === true,
  };
  if (input.choices && input.choices.length > 0) {
    field.type = 'select';
    field.options = [...new Set(input.choices)];
  } else if (input.format === 'number') field.type = 'number';
  else if (input.format === 'boolean') field.type = 'boolean';
  const description = input.description ?? input.placeholder;
  if (description) field.description = description.slice(0, 2000);
  if (input.default !== undefined && input.default !== '') {
    if (field.type === 'number' && Number.isFinite(Number(input.default)))
      field.default = Number(input.default);
    else if (field.type === 'boolean') field.default = input.default === 'true';
    else if (field.type !== 'number') field.default = input.default;
  } else if (input.format === 'filepath' && field.type === 'string') {
    // a path the sandboxed server can write: under its private data folder
    field.default = `\${HAY_PLUGIN_DATA_DIR}/${(env ?? label).toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}`;
  }
  if (input.isSecret) field.encrypted = true;
  if (env) field.env = env;
  return field;
}

function fieldInfo(name: string, f: ConfigField & { required: boolean }): CatalogConfigField {
  return {
    name,
    label: f.label ?? name,
    description: f.description ?? null,
    required: f.required,
    secret: f.encrypted === true,
  };
}

function common(server: ServerDetail, pluginId: string): Omit<HayPluginManifest, 'capabilities'> {
  const meta = server._meta?.['chat.hay/marketplace'];
  const icon = server.icons?.[0]?.src;
  return {
    id: pluginId,
    name: (server.title ?? server.name).slice(0, 200),
    version: manifestVersion(server.version),
    description: server.description.slice(0, 2000),
    author: server.name.slice(0, server.name.indexOf('/')).slice(0, 200),
    type: ['mcp-connector'],
    ...(icon ? { icon } : {}),
    ...(meta?.category ? { category: meta.category } : {}),
    ...(meta?.tags?.length ? { tags: [...new Set(meta.tags)] } : {}),
    marketplace: {
      ...(meta?.category ? { category: meta.category } : {}),
      ...(meta?.tags?.length ? { tags: [...new Set(meta.tags)] } : {}),
      ...(server.websiteUrl || server.repository?.url
        ? { homepage: server.websiteUrl ?? server.repository?.url }
        : {}),
    },
  };
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function originFile(server: ServerDetail, type: CatalogInstallType, source: string): string {
  const origin: CatalogOrigin = { name: server.name, version: server.version, type, source };
  return json(origin);
}

/**
 * An npm package run over stdio, or a reason it cannot be: exact versions only, the operator's npm
 * registry only, environment variable names the host lets through.
 */
function npmVariant(
  server: ServerDetail,
  pkg: RegistryPackage,
  registryHost: string,
): InstallVariant | string {
  if (pkg.transport.type !== 'stdio')
    return `npm package ${pkg.identifier}: only the stdio transport can be installed (got ${pkg.transport.type})`;
  if (
    !/^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/.test(pkg.identifier) ||
    pkg.identifier.length > 214
  )
    return `npm package "${pkg.identifier}" is not a valid npm package name`;
  const version = pkg.version ?? '';
  if (semver.valid(version) === null)
    return `npm package ${pkg.identifier}: version "${version}" is not an exact version (ranges and "latest" are refused)`;
  if (pkg.registryBaseUrl && new URL(pkg.registryBaseUrl).hostname !== registryHost)
    return `npm package ${pkg.identifier} is on ${pkg.registryBaseUrl}; tenant installs use only the host's npm registry (${registryHost})`;
  const schema: Record<string, ConfigField & { required: boolean }> = {};
  const fixedEnv: Record<string, string> = {};
  for (const v of pkg.environmentVariables ?? []) {
    if (!ENV_NAME.test(v.name) || RESERVED_ENV.test(v.name))
      return `environment variable "${v.name}" cannot be set for a plugin (uppercase names only; HAY_*, NODE_*, LD_*, PATH and the like are the host's)`;
    if (v.value !== undefined && !/\{[A-Za-z_][A-Za-z0-9_]*\}/.test(v.value)) fixedEnv[v.name] = v.value;
    else schema[fieldName(v.name)] = configField(v, v.name, v.name);
  }
  const args: { flag?: string; value?: string; env?: string; boolean?: boolean }[] = [];
  for (const [i, a] of (pkg.packageArguments ?? []).entries()) {
    const flag = a.type === 'named' ? a.name : undefined;
    if (a.type === 'named' && !flag) return `package argument ${i} is named but has no name`;
    if (a.value !== undefined && !/\{[A-Za-z_][A-Za-z0-9_]*\}/.test(a.value)) {
      args.push({ ...(flag ? { flag } : {}), value: a.value });
      continue;
    }
    const hint = argumentHint(a, i);
    const env = `HAY_CATALOG_ARG_${i}`;
    schema[fieldName(`arg_${hint}`)] = configField(a, hint, env);
    args.push({ ...(flag ? { flag } : {}), env, ...(a.format === 'boolean' ? { boolean: true } : {}) });
  }
  const identifier = pkg.identifier;
  return {
    type: 'local',
    transport: 'stdio',
    package: { identifier, version },
    configFields: Object.entries(schema).map(([n, f]) => fieldInfo(n, f)),
    files: (pluginId, options) => {
      const manifest: HayPluginManifest = {
        ...common(server, pluginId),
        entry: 'hay-start.mjs',
        capabilities: {
          mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node hay-start.mjs' },
        },
        permissions: {
          filesystem: { data: true },
          ...(options.networkHosts.length > 0 ? { network: { hosts: [...options.networkHosts] } } : {}),
        },
        ...(Object.keys(schema).length > 0 ? { configSchema: stripRequired(schema) } : {}),
      };
      return {
        'manifest.json': json(manifest),
        'package.json': json({
          name: `hay-catalog-${pluginId}`,
          version: manifest.version,
          private: true,
          description: `${server.name} from the Hay catalog`,
          dependencies: { [identifier]: version },
        }),
        'hay-start.mjs': launcher({ identifier, version, env: fixedEnv, args }),
        [ORIGIN_FILE]: originFile(server, 'local', options.source),
      };
    },
  };
}

function argumentHint(a: RegistryArgument, i: number): string {
  return (a.valueHint ?? a.name ?? `arg${i}`).replace(/^-+/, '') || `arg${i}`;
}

/** A configSchema without `required: false` noise. */
function stripRequired(
  schema: Record<string, ConfigField & { required: boolean }>,
): Record<string, ConfigField> {
  const out: Record<string, ConfigField> = {};
  for (const [name, { required, ...rest }] of Object.entries(schema))
    out[name] = required ? { ...rest, required } : rest;
  return out;
}

/**
 * A Streamable HTTP (or SSE) remote: URL variables are filled from their defaults (an entry whose URL
 * needs a value without a default is refused); each header becomes a fixed value or a configuration field
 * referenced as `${config.<field>}` (secret inputs stored encrypted).
 */
function remoteVariant(server: ServerDetail, remote: RegistryRemote): InstallVariant | string {
  let url = remote.url;
  for (const [name, input] of Object.entries(remote.variables ?? {})) {
    const value = input.value ?? input.default;
    if (value === undefined) return `remote URL variable {${name}} has no default; it cannot be installed`;
    url = url.split(`{${name}}`).join(value);
  }
  if (/\{[A-Za-z_][A-Za-z0-9_]*\}/.test(url))
    return `remote URL ${remote.url} has a variable without a value`;
  try {
    const u = new URL(url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return `remote URL ${url} is not http(s)`;
  } catch {
    return `remote URL ${url} is not a URL`;
  }
  const schema: Record<string, ConfigField & { required: boolean }> = {};
  const headers: Record<string, string> = {};
  for (const h of remote.headers ?? []) {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(h.name)) return `header name "${h.name}" is not a valid header`;
    headers[h.name] = headerTemplate(h, schema);
  }
  const transport = remote.type;
  return {
    type: 'remote',
    transport,
    url,
    configFields: Object.entries(schema).map(([n, f]) => fieldInfo(n, f)),
    files: (pluginId, options) => {
      const manifest: HayPluginManifest = {
        ...common(server, pluginId),
        capabilities: {
          mcp: {
            connection: {
              type: 'remote',
              url,
              ...(Object.keys(headers).length > 0 ? { headers } : {}),
            },
            transport: transport === 'sse' ? 'sse' : 'http',
          },
        },
        ...(Object.keys(schema).length > 0 ? { configSchema: stripRequired(schema) } : {}),
      };
      return { 'manifest.json': json(manifest), [ORIGIN_FILE]: originFile(server, 'remote', options.source) };
    },
  };
}

/** `{var}` in a header value -> `${config.<field>}`; a header without a value is one field. */
function headerTemplate(
  h: RegistryKeyValueInput,
  schema: Record<string, ConfigField & { required: boolean }>,
): string {
  if (h.value === undefined) {
    const name = fieldName(h.name);
    schema[name] = configField(h, h.name, undefined);
    return `\${config.${name}}`;
  }
  return h.value.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, v: string) => {
    const input = h.variables?.[v];
    if (!input) return whole;
    const name = fieldName(v);
    schema[name] = configField({ ...input, isSecret: input.isSecret ?? h.isSecret }, v, undefined);
    return `\${config.${name}}`;
  });
}

/**
 * Every installable form of an entry (remotes first: they run no tenant code) and the reasons the other
 * packages and remotes cannot be installed. An entry with no variant is not listed.
 */
export function installVariants(
  server: ServerDetail,
  registryHost: string,
): { variants: InstallVariant[]; problems: string[] } {
  const variants: InstallVariant[] = [];
  const problems: string[] = [];
  const add = (v: InstallVariant | string) => {
    if (typeof v === 'string') problems.push(v);
    else if (!variants.some((x) => x.type === v.type)) variants.push(v);
  };
  for (const r of server.remotes ?? []) add(remoteVariant(server, r));
  for (const p of server.packages ?? []) {
    if (p.registryType !== 'npm') problems.push(`${p.registryType} packages cannot be installed (npm only)`);
    else add(npmVariant(server, p, registryHost));
  }
  return { variants, problems };
}

interface LaunchPlan {
  identifier: string;
  version: string;
  env: Record<string, string>;
  args: { flag?: string; value?: string; env?: string; boolean?: boolean }[];
}

/**
 * The generated start script: runs the package's `bin` in this process (no shell, no npx) with the
 * entry's fixed environment and arguments; arguments from configuration come through HAY_CATALOG_ARG_<i>.
 */
function launcher(plan: LaunchPlan): string {
  return `// Generated by the Hay catalog: starts ${plan.identifier}@${plan.version} (its package.json "bin")
// in this process, without a shell, with the catalog entry's environment and arguments.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const plan = ${JSON.stringify(plan, null, 2)};
const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.join(here, 'node_modules', ...plan.identifier.split('/'));
const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const own = plan.identifier.split('/').pop();
const bins = typeof pkg.bin === 'string' ? { [own]: pkg.bin } : (pkg.bin ?? {});
const names = Object.keys(bins);
const bin = bins[own] ?? bins[names[0]];
if (typeof bin !== 'string') {
  process.stderr.write(\`\${plan.identifier}@\${plan.version} declares no "bin" to start\\n\`);
  process.exit(1);
}
for (const [k, v] of Object.entries(plan.env)) if (process.env[k] === undefined) process.env[k] = v;
const args = [];
for (const a of plan.args) {
  const v = a.value ?? (a.env ? process.env[a.env] : undefined) ?? '';
  if (v === '' || (a.boolean && v !== 'true')) continue;
  if (a.flag) args.push(a.flag);
  if (!a.boolean) args.push(v);
}
const file = path.resolve(pkgDir, bin);
process.argv = [process.argv[0], file, ...args];
await import(pathToFileURL(file).href);
`;
}
