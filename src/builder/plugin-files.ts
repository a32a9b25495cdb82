import { DEFINITION_FILE, envNameOf, inputSchemaOf, type Definition } from './engine/definition.js';
import { parseTemplate } from './engine/template.js';

/** The host package that carries the runtime (src/builder/wiring.ts offers it to plugins as a peer). */
export const RUNTIME_PACKAGE = '@hay/no-code-runtime';
/** The start command of every no-code plugin: the host's runtime, linked into node_modules. */
export const RUNTIME_START_COMMAND = `node node_modules/${RUNTIME_PACKAGE}/runtime/main.js`;

/**
 * What a no-code plugin may reach: the literal hosts of its URL templates, or any public host when some
 * URL starts with a configuration field (the organization chooses it). Addresses are checked by the
 * egress policy either way.
 */
export function networkOf(def: Definition): { all: true } | { hosts: string[] } {
  const hosts = new Set<string>();
  for (const t of def.tools) {
    const first = parseTemplate(t.url)[0];
    if (first?.kind !== 'text') return { all: true };
    const m = /^(https?:\/\/[^/?#]+)/i.exec(first.text);
    const host = m?.[1] ? new URL(`${m[1]}/`).host : '';
    // an IPv6 literal or a name the manifest pattern refuses: any host (the address is still checked)
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/.test(host)) return { all: true };
    hosts.add(host);
  }
  return { hosts: [...hosts].sort() };
}

/**
 * The files of a no-code plugin folder: manifest.json (tools with their input schemas, the configuration
 * fields as configSchema, network permission, the runtime as start command), package.json (the runtime
 * as a peer dependency, nothing to install) and the definition itself.
 */
export function pluginFilesOf(def: Definition, version: string): Record<string, string> {
  const configSchema: Record<string, unknown> = {};
  for (const f of def.config)
    configSchema[f.name] = {
      type: f.type,
      label: f.label ?? f.name,
      ...(f.description ? { description: f.description } : {}),
      ...(f.required ? { required: true } : {}),
      ...(f.encrypted ? { encrypted: true } : {}),
      env: envNameOf(f.name),
    };
  const manifest = {
    id: def.id,
    name: def.name,
    version,
    description: def.description,
    author: 'no-code builder',
    type: ['mcp-connector'],
    capabilities: {
      mcp: {
        connection: { type: 'local' },
        transport: 'stdio',
        startCommand: RUNTIME_START_COMMAND,
        tools: def.tools.map((t) => ({
          name: t.name,
          description: t.description,
          input_schema: inputSchemaOf(t),
        })),
      },
    },
    permissions: { network: networkOf(def) },
    configSchema,
    marketplace: { category: 'no-code', tags: ['no-code', 'http'] },
  };
  const pkg = {
    name: `hay-no-code-${def.id}`,
    version,
    private: true,
    type: 'module',
    peerDependencies: { [RUNTIME_PACKAGE]: '*' },
  };
  return {
    'manifest.json': `${JSON.stringify(manifest, null, 2)}\n`,
    'package.json': `${JSON.stringify(pkg, null, 2)}\n`,
    [DEFINITION_FILE]: `${JSON.stringify(def, null, 2)}\n`,
  };
}
