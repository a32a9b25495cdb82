import { describe, expect, it } from 'vitest';
import { defaultPluginId, installVariants } from '../../src/catalog/entry-plan.js';
import { documentItems, parseServerDetail } from '../../src/catalog/server-json.js';

const base = { name: 'io.example/tool', description: 'A tool', version: '1.0.0' };
const parse = (item: unknown) => {
  const r = parseServerDetail(item);
  if (!r.ok) throw new Error(r.message);
  return r.server;
};

describe('server.json entries become plugin folders', () => {
  it('maps npm environment variables and arguments to configSchema fields and a no-shell launcher', () => {
    const server = parse({
      ...base,
      packages: [
        {
          registryType: 'npm',
          identifier: '@example/mcp-tool',
          version: '2.3.4',
          transport: { type: 'stdio' },
          environmentVariables: [
            { name: 'TOOL_TOKEN', isSecret: true, isRequired: true, description: 'token' },
            { name: 'TOOL_MODE', choices: ['a', 'b'], default: 'a' },
            { name: 'TOOL_FIXED', value: 'x' },
          ],
          packageArguments: [
            { type: 'positional', value: 'serve' },
            { type: 'named', name: '--port', format: 'number', default: '8080' },
          ],
        },
      ],
    });
    const { variants, problems } = installVariants(server, 'registry.npmjs.org');
    expect(problems).toEqual([]);
    const v = variants[0];
    expect(v?.type).toBe('local');
    const files = v?.files('tool', { networkHosts: ['api.example.com'], source: 'file' }) ?? {};
    const manifest = JSON.parse(files['manifest.json'] ?? '{}') as Record<string, unknown>;
    expect(manifest).toMatchObject({
      id: 'tool',
      version: '1.0.0',
      capabilities: { mcp: { connection: { type: 'local' }, startCommand: 'node hay-start.mjs' } },
      permissions: { filesystem: { data: true }, network: { hosts: ['api.example.com'] } },
      configSchema: {
        TOOL_TOKEN: { type: 'string', encrypted: true, required: true, env: 'TOOL_TOKEN' },
        TOOL_MODE: { type: 'select', options: ['a', 'b'], default: 'a', env: 'TOOL_MODE' },
        arg_port: { type: 'number', default: 8080, env: 'HAY_CATALOG_ARG_1' },
      },
    });
    expect(JSON.parse(files['package.json'] ?? '{}')).toMatchObject({
      dependencies: { '@example/mcp-tool': '2.3.4' },
    });
    expect(files['hay-start.mjs']).toContain('"TOOL_FIXED": "x"');
    expect(files['hay-start.mjs']).not.toMatch(/child_process|spawn|exec/);
  });

  it('refuses ranges, other registries and host environment names, and keeps the remote', () => {
    const server = parse({
      ...base,
      remotes: [
        {
          type: 'streamable-http',
          url: 'https://{tenant}.example.com/mcp',
          variables: { tenant: { default: 'eu' } },
          headers: [
            {
              name: 'Authorization',
              value: 'Bearer {token}',
              variables: { token: { isSecret: true, isRequired: true } },
            },
          ],
        },
      ],
      packages: [
        { registryType: 'npm', identifier: 'a', version: '^1.0.0', transport: { type: 'stdio' } },
        {
          registryType: 'npm',
          identifier: 'b',
          version: '1.0.0',
          registryBaseUrl: 'https://npm.evil.example',
          transport: { type: 'stdio' },
        },
        {
          registryType: 'npm',
          identifier: 'c',
          version: '1.0.0',
          transport: { type: 'stdio' },
          environmentVariables: [{ name: 'NODE_OPTIONS', value: '--require /tmp/x.js' }],
        },
        { registryType: 'oci', identifier: 'd', version: '1.0.0', transport: { type: 'stdio' } },
      ],
    });
    const { variants, problems } = installVariants(server, 'registry.npmjs.org');
    expect(variants.map((v) => v.type)).toEqual(['remote']);
    expect(variants[0]?.url).toBe('https://eu.example.com/mcp');
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/not an exact version/);
    expect(problems.join('\n')).toMatch(/npm\.evil\.example/);
    expect(problems.join('\n')).toMatch(/NODE_OPTIONS/);
    const manifest = JSON.parse(
      variants[0]?.files('tool', { networkHosts: [], source: 'url' })['manifest.json'] ?? '{}',
    ) as { capabilities: { mcp: { connection: { headers: Record<string, string> } } }; configSchema: object };
    expect(manifest.capabilities.mcp.connection.headers).toEqual({ Authorization: 'Bearer ${config.token}' });
    expect(manifest.configSchema).toEqual({
      token: { type: 'string', label: 'token', required: true, encrypted: true },
    });
  });

  it('reads the three document shapes and names bad fields', () => {
    expect(documentItems(base)).toHaveLength(1);
    expect(documentItems([base, base])).toHaveLength(2);
    expect(documentItems({ servers: [{ server: base, _meta: { x: 1 } }] })).toEqual([
      { ...base, _meta: { x: 1 } },
    ]);
    expect(() => documentItems({ foo: 1 })).toThrow(/server\.json/);
    const bad = parseServerDetail({ ...base, name: 'x', icons: [{ src: 'http://insecure' }] });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.message).toMatch(/\/name .*\/icons\/0\/src/);
    expect(defaultPluginId('io.github.foo/My_Server.JS')).toBe('my-server-js');
  });
});
