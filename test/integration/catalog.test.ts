import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRemoteMcp, type RemoteMcp } from '../fixtures/egress/remote-mcp.js';
import { REPO_ROOT, startTestHost, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Marketplace installs from a catalog in the MCP Registry server.json format (src/catalog/): a local
 * fixture catalog with good and bad entries; a remote (streamable-http) entry installed, configured with a
 * secret header and called through plugins.invokeTool; an npm entry refused where tenant code may not run;
 * and (when the npm registry is reachable through the egress allow-list) a real published server,
 * @modelcontextprotocol/server-memory, installed from the bundled catalog and called.
 */

let remote: RemoteMcp;
let denied: RemoteMcp;
let catalogDir: string;

function remoteEntry(name: string, url: string, extra: Record<string, unknown> = {}) {
  return {
    $schema: 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json',
    name,
    title: 'Remote echo',
    description: 'Echoes messages from a remote MCP server.',
    version: '1.2.0',
    remotes: [
      {
        type: 'streamable-http',
        url,
        headers: [
          {
            name: 'X-Api-Key',
            description: 'Key of your account',
            isRequired: true,
            isSecret: true,
          },
        ],
      },
    ],
    _meta: { 'chat.hay/marketplace': { category: 'testing', tags: ['echo', 'remote'] } },
    ...extra,
  };
}

const memoryEntry = async () =>
  JSON.parse(await readFile(path.join(REPO_ROOT, 'catalog', 'server-memory.json'), 'utf8')) as object;

/** The failed call's HayError code, else its tRPC code. */
async function hayCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TRPCClientError) {
      const data = err.data as { hayCode?: string; code?: string } | undefined;
      return data?.hayCode ?? data?.code;
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  remote = await startRemoteMcp();
  denied = await startRemoteMcp();
  catalogDir = mkdtempSync(path.join(os.tmpdir(), 'hay-catalog-'));
  const write = (file: string, doc: unknown) =>
    writeFileSync(path.join(catalogDir, file), typeof doc === 'string' ? doc : JSON.stringify(doc));
  write('a-remote.json', remoteEntry('io.example/remote-echo', remote.url));
  write('b-denied.json', remoteEntry('io.example/loopback-denied', denied.url, { title: 'Denied' }));
  write('c-memory.json', await memoryEntry());
  // the registry API's list shape, with one good and three bad entries
  write('d-list.json', {
    servers: [
      {
        server: {
          name: 'io.example/weather',
          description: 'Weather forecasts',
          version: '0.3.0',
          remotes: [{ type: 'sse', url: 'https://weather.example.com/sse' }],
        },
        _meta: { 'io.modelcontextprotocol.registry/official': { isLatest: true } },
      },
      { server: { name: 'no-slash', description: 'bad name', version: '1.0.0' } },
      {
        server: {
          name: 'io.example/ranged',
          description: 'a version range',
          version: '1.0.0',
          packages: [
            { registryType: 'npm', identifier: 'left-pad', version: '^1.0.0', transport: { type: 'stdio' } },
          ],
        },
      },
      {
        server: {
          name: 'io.example/python-only',
          description: 'pypi only',
          version: '1.0.0',
          packages: [
            { registryType: 'pypi', identifier: 'mcp-x', version: '1.0.0', transport: { type: 'stdio' } },
          ],
        },
      },
    ],
    metadata: { count: 4 },
  });
  write('e-broken.json', '{ not json');
});

afterAll(async () => {
  await remote?.close();
  await denied?.close();
  if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
});

describe('with tenant code allowed (sandbox off, operator opt-out) and one loopback port allowed', () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      config: { catalogPath: catalogDir, egressAllow: `127.0.0.1:${remote.port}` },
    });
  });
  afterAll(async () => {
    await t?.close();
    await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
  });

  it('lists valid entries only, with search, filters and paging; bad entries never break the list', async () => {
    const a = await t.createOrganization('cat-list');
    const all = await a.hay.plugins.catalog.query({});
    expect(all.entries.map((e) => e.name)).toEqual([
      'io.example/loopback-denied',
      'io.example/remote-echo',
      'io.example/weather',
      'io.github.modelcontextprotocol/server-memory',
    ]);
    expect(all.total).toBe(4);
    // no-slash, ranged, python-only, and the broken file
    expect(all.skipped).toBe(4);
    const echo = all.entries.find((e) => e.name === 'io.example/remote-echo');
    expect(echo).toMatchObject({
      title: 'Remote echo',
      version: '1.2.0',
      types: ['remote'],
      remoteUrl: remote.url,
      package: null,
      category: 'testing',
      tags: ['echo', 'remote'],
      pluginId: 'remote-echo',
      installed: false,
      source: 'file',
      configFields: [
        {
          name: 'X_Api_Key',
          label: 'X-Api-Key',
          description: 'Key of your account',
          required: true,
          secret: true,
        },
      ],
    });
    const memory = all.entries.find((e) => e.pluginId === 'server-memory');
    expect(memory).toMatchObject({
      types: ['local'],
      package: { identifier: '@modelcontextprotocol/server-memory', version: '2026.8.31' },
    });

    expect((await a.hay.plugins.catalog.query({ type: 'local' })).entries.map((e) => e.pluginId)).toEqual([
      'server-memory',
    ]);
    expect((await a.hay.plugins.catalog.query({ tag: 'ECHO' })).total).toBe(2);
    expect((await a.hay.plugins.catalog.query({ category: 'knowledge' })).total).toBe(1);
    expect((await a.hay.plugins.catalog.query({ query: 'weather forecasts' })).entries[0]?.name).toBe(
      'io.example/weather',
    );
    const p1 = await a.hay.plugins.catalog.query({ limit: 3 });
    expect(p1.entries).toHaveLength(3);
    expect(p1.nextCursor).not.toBeNull();
    const p2 = await a.hay.plugins.catalog.query({ limit: 3, cursor: p1.nextCursor ?? undefined });
    expect(p2.entries.map((e) => e.name)).toEqual(['io.github.modelcontextprotocol/server-memory']);
    expect(p2.nextCursor).toBeNull();
    expect(await hayCode(a.hay.plugins.catalog.query({ cursor: 'bogus' }))).toBe('INPUT_INVALID');
  });

  it('installs a remote entry as a custom plugin, stores the secret header encrypted, and calls it', async () => {
    const a = await t.createOrganization('cat-remote');
    const b = await t.createOrganization('cat-other');
    const out = await a.hay.plugins.installFromCatalog.mutate({ name: 'io.example/remote-echo' });
    expect(out).toMatchObject({ pluginId: 'remote-echo', version: '1.2.0', type: 'remote', replaced: false });

    const manifest = JSON.parse(
      await readFile(
        path.join(t.pluginsDir, 'custom', a.organizationId, 'remote-echo', 'manifest.json'),
        'utf8',
      ),
    ) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      id: 'remote-echo',
      name: 'Remote echo',
      capabilities: {
        mcp: {
          connection: { type: 'remote', url: remote.url, headers: { 'X-Api-Key': '${config.X_Api_Key}' } },
          transport: 'http',
        },
      },
      configSchema: { X_Api_Key: { type: 'string', required: true, encrypted: true } },
    });

    const listed = await a.hay.plugins.catalog.query({ installed: true });
    expect(listed.entries.map((e) => [e.name, e.installedPluginId, e.installedVersion])).toEqual([
      ['io.example/remote-echo', 'remote-echo', '1.2.0'],
    ]);
    // another organization sees the entry as not installed, and cannot see the plugin
    expect((await b.hay.plugins.catalog.query({ installed: true })).total).toBe(0);
    expect(await hayCode(b.hay.plugins.get.query({ pluginId: 'remote-echo' }))).toBe('PLUGIN_NOT_FOUND');

    await a.hay.plugins.enable.mutate({
      pluginId: 'remote-echo',
      configuration: { X_Api_Key: 'sk-cat-123' },
    });
    const got = await a.hay.plugins.get.query({ pluginId: 'remote-echo' });
    expect(JSON.stringify(got)).not.toContain('sk-cat-123');
    const result = await a.hay.plugins.invokeTool.mutate({
      pluginId: 'remote-echo',
      toolName: 'echo',
      arguments: { message: 'from the catalog' },
    });
    expect(result.content).toEqual([{ type: 'text', text: 'from the catalog' }]);
    expect(remote.headers.some((h) => h['x-api-key'] === 'sk-cat-123')).toBe(true);

    const audit = await a.hay.audit.list.query({ action: 'plugin.catalog-install' });
    expect(audit.entries.map((r) => [r.pluginId, r.outcome, r.details.entry, r.details.type])).toEqual([
      ['remote-echo', 'ok', 'io.example/remote-echo', 'remote'],
    ]);
  });

  it('refuses a remote entry whose URL the egress policy denies, writing nothing', async () => {
    const a = await t.createOrganization('cat-denied');
    expect(
      await hayCode(a.hay.plugins.installFromCatalog.mutate({ name: 'io.example/loopback-denied' })),
    ).toBe('EGRESS_DENIED');
    expect(existsSync(path.join(t.pluginsDir, 'custom', a.organizationId, 'loopback-denied'))).toBe(false);
    expect(await hayCode(a.hay.plugins.installFromCatalog.mutate({ name: 'io.example/nope' }))).toBe(
      'CATALOG_ENTRY_NOT_FOUND',
    );
  });

  it('needs an org admin key to install; a member key can list', async () => {
    const a = await t.createOrganization('cat-member');
    const { apiKey } = await t.admin.admin.createApiKey.mutate({
      organizationId: a.organizationId,
      role: 'member',
    });
    const member = t.client(apiKey);
    expect((await member.plugins.catalog.query({})).total).toBe(4);
    expect(await hayCode(member.plugins.installFromCatalog.mutate({ name: 'io.example/remote-echo' }))).toBe(
      'FORBIDDEN',
    );
  });
});

describe('a catalog URL (registry list API, paged) read through the egress policy', () => {
  let t: TestHost;
  let server: Server;
  let port = 0;
  const requests: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const page2 = (req.url ?? '').includes('cursor=p2');
      const item = (n: string) => ({
        server: {
          name: `io.example/${n}`,
          description: `entry ${n}`,
          version: '1.0.0',
          remotes: [{ type: 'streamable-http', url: `https://${n}.example.com/mcp` }],
        },
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          page2
            ? { servers: [item('from-page-two'), { server: { name: 'bad' } }], metadata: {} }
            : { servers: [item('from-url')], metadata: { nextCursor: 'p2' } },
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    t = await startTestHost({
      corePlugins: [],
      config: {
        catalogPath: path.join(catalogDir, 'a-remote.json'),
        catalogUrl: `http://127.0.0.1:${port}/v0.1/servers`,
        egressAllow: `127.0.0.1:${port}`,
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('follows nextCursor, merges with the local file, skips bad entries and caches the answer', async () => {
    const a = await t.createOrganization('cat-url');
    const page = await a.hay.plugins.catalog.query({});
    expect(page.entries.map((e) => [e.name, e.source])).toEqual([
      ['io.example/from-page-two', 'url'],
      ['io.example/from-url', 'url'],
      ['io.example/remote-echo', 'file'],
    ]);
    expect(page.skipped).toBe(1);
    await a.hay.plugins.catalog.query({});
    expect(requests).toEqual(['/v0.1/servers', '/v0.1/servers?cursor=p2']);
  });
});

describe('a catalog URL the egress policy denies', () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      config: {
        catalogPath: path.join(catalogDir, 'a-remote.json'),
        catalogUrl: remote.url.replace('/mcp', '/list'),
      },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is not read (loopback is denied) and the local entries are still listed', async () => {
    const a = await t.createOrganization('cat-url-denied');
    const before = remote.hits.length;
    const page = await a.hay.plugins.catalog.query({});
    expect(page.entries.map((e) => e.name)).toEqual(['io.example/remote-echo']);
    expect(remote.hits.length).toBe(before);
  });
});

describe('where tenant code may not run unsandboxed', () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      config: { catalogPath: catalogDir, allowUnsandboxedTenantCode: false },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses an npm entry with SANDBOX_UNAVAILABLE before writing anything', async () => {
    const a = await t.createOrganization('cat-nosandbox');
    expect(
      await hayCode(
        a.hay.plugins.installFromCatalog.mutate({ name: 'io.github.modelcontextprotocol/server-memory' }),
      ),
    ).toBe('SANDBOX_UNAVAILABLE');
    const orgDir = path.join(t.pluginsDir, 'custom', a.organizationId);
    expect(existsSync(orgDir) ? readdirSync(orgDir) : []).toEqual([]);
  });
});

/** The npm registry through the egress proxy (HAY_EGRESS_ALLOW names it: on some networks it resolves to a reserved range). */
const registryReachable = await fetch('https://registry.npmjs.org/@modelcontextprotocol%2fserver-memory', {
  method: 'HEAD',
  signal: AbortSignal.timeout(5000),
}).then(
  (r) => r.ok,
  () => false,
);
if (!registryReachable)
  console.warn('catalog: registry.npmjs.org unreachable; the real npm install test is skipped');

describe.skipIf(!registryReachable)('a real published server from the bundled catalog', () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      config: {
        egressAllow: 'registry.npmjs.org',
        installTimeoutMs: 170_000,
        callTimeoutMs: 180_000,
        startTimeoutMs: 30_000,
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await waitFor(() => descendantPids().length === 0, 'plugin and npm processes to exit', 20_000);
  });

  it(
    'installs @modelcontextprotocol/server-memory (npm, stdio) and calls its tools',
    { timeout: 240_000 },
    async () => {
      const a = await t.createOrganization('cat-npm');
      const bundled = await a.hay.plugins.catalog.query({ query: 'memory' });
      expect(bundled.entries[0]).toMatchObject({
        pluginId: 'server-memory',
        source: 'bundled',
        types: ['local'],
      });
      const out = await a.hay.plugins.installFromCatalog.mutate({
        name: 'io.github.modelcontextprotocol/server-memory',
      });
      expect(out).toMatchObject({ pluginId: 'server-memory', type: 'local' });
      await a.hay.plugins.enable.mutate({ pluginId: 'server-memory', configuration: {} });
      const created = await a.hay.plugins.invokeTool.mutate({
        pluginId: 'server-memory',
        toolName: 'create_entities',
        arguments: {
          entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }],
        },
      });
      expect(created.isError).toBeFalsy();
      const graph = await a.hay.plugins.invokeTool.mutate({
        pluginId: 'server-memory',
        toolName: 'read_graph',
        arguments: {},
      });
      expect(JSON.stringify(graph.content)).toContain('wrote the first program');
      // the graph lives in the organization's private data folder (${HAY_PLUGIN_DATA_DIR}/memory.jsonl)
      expect(
        existsSync(path.join(t.dataDir, 'plugin-data', a.organizationId, 'server-memory', 'memory.jsonl')),
      ).toBe(true);
      // the exact version of the entry is what got installed (the install writes no lockfile into the folder)
      const dir = path.join(t.pluginsDir, 'custom', a.organizationId, 'server-memory');
      const installed = JSON.parse(
        await readFile(
          path.join(dir, 'node_modules', '@modelcontextprotocol', 'server-memory', 'package.json'),
          'utf8',
        ),
      ) as { version?: string };
      expect(installed.version).toBe('2026.8.31');
      expect(existsSync(path.join(dir, 'package-lock.json'))).toBe(false);
    },
  );
});
