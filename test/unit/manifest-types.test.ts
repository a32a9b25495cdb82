/**
 * Proves src/manifest/types.ts and plugins/base/plugin-manifest.schema.json describe the same manifest.
 * Two independent checks, so drift fails whichever side changed:
 * - compile time: the KEYS/ENUMS objects `satisfies Record<keyof T, true>`, so tsc fails if an interface
 *   gains or loses a property (or a union a member) without the lists following;
 * - run time: the lists, the schema and the AST of types.ts are compared, so vitest fails if the schema
 *   or types.ts changes without the other.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import type {
  ApiCapabilities,
  ApiRoute,
  ConfigField,
  ConfigFieldType,
  FilesystemPermission,
  HayPluginManifest,
  HttpMethod,
  MarketplaceMetadata,
  McpAuthMethod,
  McpCapabilities,
  McpConnection,
  McpConnectionType,
  McpToolDeclaration,
  NetworkPermission,
  PlatformApiName,
  PluginCapabilities,
  PluginPermissions,
  PluginType,
  ResourceLimits,
  RuntimeSettings,
  ToolCacheSettings,
  TransportName,
  UiCapabilities,
} from '../../src/manifest/types.js';

type Keys<T> = Record<keyof T, true>;

/** Every property of every manifest interface. */
const KEYS = {
  HayPluginManifest: {
    $schema: true,
    id: true,
    name: true,
    version: true,
    description: true,
    author: true,
    type: true,
    entry: true,
    capabilities: true,
    permissions: true,
    configSchema: true,
    dependencies: true,
    runtime: true,
    marketplace: true,
    category: true,
    icon: true,
    tags: true,
  } satisfies Keys<HayPluginManifest>,
  PluginCapabilities: { mcp: true, ui: true, api: true } satisfies Keys<PluginCapabilities>,
  McpCapabilities: {
    connection: true,
    transport: true,
    tools: true,
    startCommand: true,
    installCommand: true,
    buildCommand: true,
    auth: true,
  } satisfies Keys<McpCapabilities>,
  McpConnection: { type: true, url: true, headers: true } satisfies Keys<McpConnection>,
  McpToolDeclaration: {
    name: true,
    description: true,
    input_schema: true,
    cache: true,
  } satisfies Keys<McpToolDeclaration>,
  ToolCacheSettings: { ttlSeconds: true } satisfies Keys<ToolCacheSettings>,
  UiCapabilities: { settings: true, components: true } satisfies Keys<UiCapabilities>,
  ApiCapabilities: { routes: true } satisfies Keys<ApiCapabilities>,
  ApiRoute: { method: true, path: true, description: true } satisfies Keys<ApiRoute>,
  PluginPermissions: {
    api: true,
    env: true,
    network: true,
    filesystem: true,
  } satisfies Keys<PluginPermissions>,
  NetworkPermission: { all: true, hosts: true } satisfies Keys<NetworkPermission>,
  FilesystemPermission: { data: true, read: true } satisfies Keys<FilesystemPermission>,
  ConfigField: {
    type: true,
    label: true,
    description: true,
    required: true,
    default: true,
    encrypted: true,
    env: true,
    options: true,
  } satisfies Keys<ConfigField>,
  RuntimeSettings: {
    warmInstances: true,
    shared: true,
    maxConcurrentInstances: true,
    idleTimeoutMs: true,
    limits: true,
    rateLimitPerMinute: true,
  } satisfies Keys<RuntimeSettings>,
  ResourceLimits: {
    memoryMb: true,
    cpuPercent: true,
    maxProcesses: true,
    maxOpenFiles: true,
  } satisfies Keys<ResourceLimits>,
  MarketplaceMetadata: {
    category: true,
    icon: true,
    tags: true,
    homepage: true,
    license: true,
  } satisfies Keys<MarketplaceMetadata>,
};
type InterfaceName = keyof typeof KEYS;

/** Every member of every string-literal union. */
const ENUMS = {
  PluginType: {
    channel: true,
    'mcp-connector': true,
    retriever: true,
    playbook: true,
    workflow: true,
    analytics: true,
  } satisfies Record<PluginType, true>,
  McpAuthMethod: { oauth2: true, jwt: true, apiKey: true } satisfies Record<McpAuthMethod, true>,
  PlatformApiName: { email: true } satisfies Record<PlatformApiName, true>,
  McpConnectionType: { local: true, remote: true } satisfies Record<McpConnectionType, true>,
  ConfigFieldType: {
    string: true,
    number: true,
    boolean: true,
    url: true,
    select: true,
  } satisfies Record<ConfigFieldType, true>,
  HttpMethod: { GET: true, POST: true, PUT: true, PATCH: true, DELETE: true } satisfies Record<
    HttpMethod,
    true
  >,
  TransportName: { stdio: true, sse: true, websocket: true, http: true } satisfies Record<
    TransportName,
    true
  >,
};
type EnumName = keyof typeof ENUMS;

/** Where each interface sits in the manifest: property names, `[]` = array items, `{}` = map values. */
const INTERFACE_PATHS: Record<InterfaceName, string[]> = {
  HayPluginManifest: [],
  PluginCapabilities: ['capabilities'],
  McpCapabilities: ['capabilities', 'mcp'],
  McpConnection: ['capabilities', 'mcp', 'connection'],
  McpToolDeclaration: ['capabilities', 'mcp', 'tools', '[]'],
  ToolCacheSettings: ['capabilities', 'mcp', 'tools', '[]', 'cache'],
  UiCapabilities: ['capabilities', 'ui'],
  ApiCapabilities: ['capabilities', 'api'],
  ApiRoute: ['capabilities', 'api', 'routes', '[]'],
  PluginPermissions: ['permissions'],
  NetworkPermission: ['permissions', 'network'],
  FilesystemPermission: ['permissions', 'filesystem'],
  ConfigField: ['configSchema', '{}'],
  RuntimeSettings: ['runtime'],
  ResourceLimits: ['runtime', 'limits'],
  MarketplaceMetadata: ['marketplace'],
};

/** Where each union's values are listed as a schema `enum` (TransportName lives in a pattern instead). */
const ENUM_PATHS: Record<Exclude<EnumName, 'TransportName'>, string[]> = {
  PluginType: ['type', '[]'],
  McpAuthMethod: ['capabilities', 'mcp', 'auth', '[]'],
  PlatformApiName: ['permissions', 'api', '[]'],
  McpConnectionType: ['capabilities', 'mcp', 'connection', 'type'],
  ConfigFieldType: ['configSchema', '{}', 'type'],
  HttpMethod: ['capabilities', 'api', 'routes', '[]', 'method'],
};

// ---- schema access -------------------------------------------------------------------------------------

type SchemaNode = {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  type?: string | string[];
  [key: string]: unknown;
};

const schema = JSON.parse(
  readFileSync(new URL('../../plugins/base/plugin-manifest.schema.json', import.meta.url), 'utf8'),
) as SchemaNode & { $defs: Record<string, SchemaNode> };

function deref(node: SchemaNode | undefined, where: string): SchemaNode {
  let current = node;
  for (let hops = 0; current?.$ref !== undefined; hops++) {
    const name = /^#\/\$defs\/(.+)$/.exec(current.$ref)?.[1];
    if (name === undefined || hops > 10) throw new Error(`${where}: unsupported $ref ${current.$ref}`);
    current = schema.$defs[name];
  }
  if (current === undefined) throw new Error(`${where}: no such schema node`);
  return current;
}

function schemaAt(segments: string[]): SchemaNode {
  let node = deref(schema, '/');
  segments.forEach((seg, i) => {
    const where = `/${segments.slice(0, i + 1).join('/')}`;
    const next =
      seg === '[]'
        ? node.items
        : seg === '{}'
          ? typeof node.additionalProperties === 'object'
            ? node.additionalProperties
            : undefined
          : node.properties?.[seg];
    node = deref(next, where);
  });
  return node;
}

// ---- types.ts AST --------------------------------------------------------------------------------------

interface Member {
  optional: boolean;
  typeText: string;
}

function readTypesFile(): { interfaces: Map<string, Map<string, Member>>; unions: Map<string, string[]> } {
  const file = fileURLToPath(new URL('../../src/manifest/types.ts', import.meta.url));
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const interfaces = new Map<string, Map<string, Member>>();
  const unions = new Map<string, string[]>();
  for (const stmt of source.statements) {
    if (ts.isInterfaceDeclaration(stmt)) {
      const members = new Map<string, Member>();
      for (const m of stmt.members) {
        if (!ts.isPropertySignature(m)) throw new Error(`${stmt.name.text}: unsupported member kind`);
        const name =
          ts.isIdentifier(m.name) || ts.isStringLiteral(m.name) ? m.name.text : m.name.getText(source);
        if (m.type && ts.isTypeLiteralNode(m.type)) {
          throw new Error(`${stmt.name.text}.${name}: use a named interface so the drift test can see it`);
        }
        members.set(name, {
          optional: m.questionToken !== undefined,
          typeText: m.type?.getText(source) ?? '',
        });
      }
      interfaces.set(stmt.name.text, members);
    } else if (ts.isTypeAliasDeclaration(stmt)) {
      const t = stmt.type;
      const parts = ts.isUnionTypeNode(t) ? t.types : [t];
      const literals = parts.flatMap((p) =>
        ts.isLiteralTypeNode(p) && ts.isStringLiteral(p.literal) ? [p.literal.text] : [],
      );
      if (literals.length === parts.length) unions.set(stmt.name.text, literals);
    }
  }
  return { interfaces, unions };
}

const ast = readTypesFile();
const sorted = (values: Iterable<string>): string[] => [...values].sort();

// ---- tests -------------------------------------------------------------------------------------------

describe('manifest types and schema agree', () => {
  it('every interface and string union in types.ts is covered by this test', () => {
    expect(sorted(ast.interfaces.keys())).toEqual(sorted(Object.keys(KEYS)));
    expect(sorted(ast.unions.keys())).toEqual(sorted(Object.keys(ENUMS)));
  });

  describe.each(Object.keys(KEYS) as InterfaceName[])('%s', (name) => {
    const node = schemaAt(INTERFACE_PATHS[name]);
    const members = ast.interfaces.get(name) ?? new Map<string, Member>();

    it('has the same properties in the key list, the schema and types.ts', () => {
      const schemaKeys = sorted(Object.keys(node.properties ?? {}));
      expect(sorted(Object.keys(KEYS[name]))).toEqual(schemaKeys);
      expect(sorted(members.keys())).toEqual(schemaKeys);
    });

    it('marks the same properties required', () => {
      const requiredInTypes = [...members].filter(([, m]) => !m.optional).map(([key]) => key);
      expect(sorted(node.required ?? [])).toEqual(sorted(requiredInTypes));
    });

    it('is reached through the same property in both', () => {
      const segments = INTERFACE_PATHS[name];
      if (segments.length === 0) return;
      let propIndex = segments.length - 1;
      while (propIndex > 0 && (segments[propIndex] === '[]' || segments[propIndex] === '{}')) propIndex--;
      const prop = segments[propIndex] ?? '';
      const parentPath = segments.slice(0, propIndex).join('/');
      const parent = (Object.keys(INTERFACE_PATHS) as InterfaceName[]).find(
        (n) => INTERFACE_PATHS[n].join('/') === parentPath,
      );
      const typeText = ast.interfaces.get(parent ?? '')?.get(prop)?.typeText;
      const wrapper = segments.slice(propIndex + 1).join('');
      const expected = wrapper === '[]' ? `${name}[]` : wrapper === '{}' ? `Record<string, ${name}>` : name;
      expect(typeText).toBe(expected);
    });
  });

  it.each(Object.keys(ENUM_PATHS) as (keyof typeof ENUM_PATHS)[])('%s lists the same values', (name) => {
    const values = schemaAt(ENUM_PATHS[name]).enum;
    expect(sorted((values ?? []).map(String))).toEqual(sorted(Object.keys(ENUMS[name])));
    expect(sorted(ast.unions.get(name) ?? [])).toEqual(sorted(Object.keys(ENUMS[name])));
  });

  it('TransportName lists the transports the transport pattern allows', () => {
    const pattern = schemaAt(['capabilities', 'mcp', 'transport']).pattern ?? '';
    const groups = [...pattern.matchAll(/\(([a-z|-]+)\)/g)].map((m) => sorted((m[1] ?? '').split('|')));
    expect(groups).toHaveLength(2);
    expect(groups[0]).toEqual(groups[1]);
    expect(groups[0]).toEqual(sorted(Object.keys(ENUMS.TransportName)));
    expect(sorted(ast.unions.get('TransportName') ?? [])).toEqual(groups[0]);
  });

  it('every schema object with properties forbids unknown properties', () => {
    const open: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}/${i}`));
      if (typeof node !== 'object' || node === null) return;
      const n = node as SchemaNode;
      const isConditional = /\/(if|then)(\/|$)/.test(where);
      if (n.properties !== undefined && !isConditional && n.additionalProperties !== false) open.push(where);
      for (const [key, child] of Object.entries(n)) {
        if (key !== 'enum' && key !== 'const' && key !== 'default') walk(child, `${where}/${key}`);
      }
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  it('every $defs entry is used', () => {
    const text = JSON.stringify(schema);
    const unused = Object.keys(schema.$defs).filter((d) => !text.includes(`"#/$defs/${d}"`));
    expect(unused).toEqual([]);
  });
});
