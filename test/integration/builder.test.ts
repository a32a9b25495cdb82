import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DefinitionInput } from '../../src/builder/engine/definition.js';
import { detectSandboxLayers } from '../../src/runtime/sandbox/detect.js';
import { descendantPids, waitFor } from '../helpers/processes.js';
import { buildZip } from '../helpers/zip-writer.js';
import { REPO_ROOT, startTestHost, type TestHost } from '../helpers/host.js';

/**
 * The no-code builder end to end: a real host, a loopback HTTP server standing in for the tenant's API
 * (allowed explicitly by the operator's HAY_EGRESS_ALLOW for its port), builder.test, builder.save,
 * enable with a secret, plugins.invokeTool through the bundled runtime, a second version, rollback.
 * The dist/ build must be current (npm test builds it): the runtime is the compiled dist/src/builder.
 */
interface Hit {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
let server: http.Server;
let port = 0;
let hits: Hit[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url?.startsWith('/api/redirect')) {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
        res.end();
        return;
      }
      if (req.url?.startsWith('/missing')) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('secret stack trace of the remote');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, path: req.url, data: { temperature: 21 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function weatherDefinition(id: string, headerName = 'x-api-key'): DefinitionInput {
  return {
    id,
    name: 'Weather (no-code)',
    description: 'Weather lookups against the organization API',
    config: [
      { name: 'baseUrl', type: 'url', required: true, description: 'API root' },
      { name: 'apiKey', type: 'string', required: true, encrypted: true },
    ],
    tools: [
      {
        name: 'weather',
        description: 'Current weather of a city',
        parameters: [
          { name: 'city', type: 'string', required: true },
          { name: 'units', type: 'string', enum: ['metric', 'imperial'] },
        ],
        method: 'GET',
        url: '{{config.baseUrl}}/weather/{{params.city}}',
        query: { units: '{{params.units}}' },
        headers: { [headerName]: '{{config.apiKey}}' },
        response: { kind: 'json', pointer: '/data' },
      },
      {
        name: 'report',
        description: 'Posts a report',
        parameters: [
          { name: 'city', type: 'string', required: true },
          { name: 'count', type: 'integer', required: true },
        ],
        method: 'POST',
        url: '{{config.baseUrl}}/reports',
        body: {
          kind: 'json',
          value: { city: '{{params.city}}', count: '{{params.count}}', note: 'n={{params.count}}' },
        },
      },
    ],
  };
}

const text = (r: { content?: unknown }) =>
  ((r.content as { type: string; text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('');

describe('no-code builder (sandbox off, operator allows the test server)', () => {
  let t: TestHost;
  let org: Awaited<ReturnType<TestHost['createOrganization']>>;
  const baseUrl = () => `http://127.0.0.1:${port}/api`;

  beforeAll(async () => {
    t = await startTestHost({ corePlugins: [], config: { egressAllow: `127.0.0.1:${port}` } });
    org = await t.createOrganization('builder-org');
  });
  afterAll(async () => {
    await t.close();
    expect(descendantPids()).toEqual([]);
  });

  it('refuses an invalid definition naming the JSON pointer of each problem', async () => {
    const def = weatherDefinition('bad-one');
    (def.tools[0] as { url: string }).url = '{{config.baseUrl}}/weather/{{params.town}}';
    const err = await org.hay.builder.save.mutate({ definition: def }).catch((e: unknown) => e);
    const data = (err as { data?: { hayCode?: string; details?: { problems?: { pointer: string }[] } } })
      .data;
    expect(data?.hayCode).toBe('DEFINITION_INVALID');
    expect(data?.details?.problems?.map((p) => p.pointer)).toEqual(['/tools/0/url']);
    expect((err as Error).message).toContain('params.town');
  });

  it('builder.test renders the request, reaches the allowed server and returns status, duration and result', async () => {
    hits = [];
    const out = await org.hay.builder.test.mutate({
      definition: weatherDefinition('weather-nc'),
      toolName: 'weather',
      params: { city: 'São Paulo/../admin', units: 'metric' },
      configuration: { baseUrl: baseUrl(), apiKey: 'sk-test-123' },
    });
    expect(out.status).toBe(200);
    expect(out.durationMs).toBeGreaterThanOrEqual(0);
    expect(out.result.isError).toBeUndefined();
    expect(out.result.structuredContent).toEqual({ temperature: 21 });
    expect(hits).toHaveLength(1);
    expect(hits[0]?.url).toBe('/api/weather/S%C3%A3o%20Paulo%2F..%2Fadmin?units=metric');
    expect(hits[0]?.headers['x-api-key']).toBe('sk-test-123');
    // the echoed request hides encrypted configuration values
    expect(out.request?.headers['x-api-key']).toBe('[secret]');
    expect(JSON.stringify(out)).not.toContain('sk-test-123');
  });

  it('builder.test maps a non-2xx answer to isError with the status only', async () => {
    const def = weatherDefinition('weather-nc');
    (def.tools[0] as { url: string }).url = '{{config.baseUrl}}/missing/{{params.city}}';
    const out = await org.hay.builder.test.mutate({
      definition: def,
      toolName: 'weather',
      params: { city: 'x' },
      configuration: { baseUrl: `http://127.0.0.1:${port}`, apiKey: 'k' },
    });
    expect(out.status).toBe(404);
    expect(out.result.isError).toBe(true);
    expect(text(out.result)).toBe('HTTP 404');
  });

  it('builder.test refuses a loopback port the operator did not allow', async () => {
    const err = await org.hay.builder.test
      .mutate({
        definition: weatherDefinition('weather-nc'),
        toolName: 'weather',
        params: { city: 'x' },
        configuration: { baseUrl: `http://127.0.0.1:${port + 1 === 65536 ? 1 : port + 1}`, apiKey: 'k' },
      })
      .catch((e: unknown) => e);
    expect((err as { data?: { hayCode?: string } }).data?.hayCode).toBe('EGRESS_DENIED');
  });

  it('builder.test does not follow a redirect (here to the metadata address)', async () => {
    hits = [];
    const def = weatherDefinition('weather-nc');
    (def.tools[0] as { url: string }).url = '{{config.baseUrl}}/redirect/{{params.city}}';
    const out = await org.hay.builder.test.mutate({
      definition: def,
      toolName: 'weather',
      params: { city: 'x' },
      configuration: { baseUrl: baseUrl(), apiKey: 'k' },
    });
    expect(out.status).toBe(302);
    expect(text(out.result)).toBe('HTTP 302 (redirects are not followed)');
    expect(hits).toHaveLength(1);
  });

  it('builder.save refuses to replace an uploaded plugin that is not a no-code one', async () => {
    const manifest = {
      id: 'uploaded-one',
      name: 'Uploaded',
      version: '1.0.0',
      description: 'an uploaded plugin',
      type: ['mcp-connector'],
      capabilities: {
        mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node s.mjs' },
      },
    };
    const form = new FormData();
    const zip = buildZip([
      { name: 'manifest.json', data: JSON.stringify(manifest) },
      { name: 's.mjs', data: '' },
    ]);
    form.append('file', new Blob([new Uint8Array(zip)]), 'p.zip');
    const res = await fetch(`${t.url}/v1/plugins/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${org.apiKey}` },
      body: form,
    });
    expect(res.status).toBe(200);
    const err = await org.hay.builder.save
      .mutate({ definition: weatherDefinition('uploaded-one') })
      .catch((e: unknown) => e);
    expect((err as { data?: { hayCode?: string } }).data?.hayCode).toBe('CONFLICT');
    const err2 = await org.hay.builder.get.query({ pluginId: 'uploaded-one' }).catch((e: unknown) => e);
    expect((err2 as { data?: { hayCode?: string } }).data?.hayCode).toBe('PLUGIN_NOT_FOUND');
    expect((await org.hay.plugins.get.query({ pluginId: 'uploaded-one' })).version).toBe('1.0.0');
  });

  it('saves, enables with a secret, invokes through the runtime, saves v2, rolls back', async () => {
    const saved = await org.hay.builder.save.mutate({ definition: weatherDefinition('weather-nc') });
    expect(saved).toEqual({ pluginId: 'weather-nc', version: '1.0.0', replaced: false });
    const got = await org.hay.builder.get.query({ pluginId: 'weather-nc' });
    expect(got.version).toBe('1.0.0');
    expect(got.definition.tools.map((x) => x.name)).toEqual(['weather', 'report']);
    expect((await org.hay.builder.list.query()).map((p) => p.pluginId)).toEqual(['weather-nc']);

    await org.hay.plugins.enable.mutate({
      pluginId: 'weather-nc',
      configuration: { baseUrl: baseUrl(), apiKey: 'sk-live-secret' },
    });
    const info = (await org.hay.plugins.get.query({ pluginId: 'weather-nc' })) as unknown as Record<
      string,
      unknown
    >;
    expect(JSON.stringify(info)).not.toContain('sk-live-secret');
    expect(JSON.stringify(await org.hay.builder.get.query({ pluginId: 'weather-nc' }))).not.toContain(
      'sk-live-secret',
    );

    hits = [];
    const r1 = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'weather-nc',
      toolName: 'weather',
      arguments: { city: 'Oslo' },
    });
    expect(r1.isError).toBeFalsy();
    expect(JSON.parse(text(r1))).toEqual({ temperature: 21 });
    expect(hits[0]?.url).toBe('/api/weather/Oslo');
    expect(hits[0]?.headers['x-api-key']).toBe('sk-live-secret');

    hits = [];
    const r2 = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'weather-nc',
      toolName: 'report',
      arguments: { city: 'Oslo", "admin": true, "x": "', count: 3 },
    });
    expect(r2.isError).toBeFalsy();
    expect(hits[0]?.method).toBe('POST');
    expect(hits[0]?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(hits[0]?.body ?? '')).toEqual({
      city: 'Oslo", "admin": true, "x": "',
      count: 3,
      note: 'n=3',
    });

    // a stored secret is usable in a test without sending it again
    hits = [];
    const stored = await org.hay.builder.test.mutate({
      definition: weatherDefinition('weather-nc'),
      toolName: 'weather',
      params: { city: 'Bern' },
      configuration: { baseUrl: baseUrl(), apiKey: { set: true } },
    });
    expect(stored.status).toBe(200);
    expect(hits[0]?.headers['x-api-key']).toBe('sk-live-secret');
    expect(JSON.stringify(stored)).not.toContain('sk-live-secret');

    const v2 = await org.hay.builder.save.mutate({ definition: weatherDefinition('weather-nc', 'x-token') });
    expect(v2).toEqual({ pluginId: 'weather-nc', version: '1.0.1', replaced: true });
    hits = [];
    await waitFor(async () => {
      await org.hay.plugins.invokeTool.mutate({
        pluginId: 'weather-nc',
        toolName: 'weather',
        arguments: { city: 'Rome' },
      });
      return hits.at(-1)?.headers['x-token'] === 'sk-live-secret';
    }, 'version 1.0.1 answering');

    await waitFor(async () => {
      const kept = await org.hay.plugins.versions.query({ pluginId: 'weather-nc' });
      const v = kept.versions.map((x) => x.version);
      return v.includes('1.0.0') && v.includes('1.0.1');
    }, 'both versions kept by the lifecycle');

    const back = await org.hay.plugins.rollback.mutate({ pluginId: 'weather-nc' });
    expect(back.version).toBe('1.0.0');
    hits = [];
    await waitFor(async () => {
      await org.hay.plugins.invokeTool.mutate({
        pluginId: 'weather-nc',
        toolName: 'weather',
        arguments: { city: 'Rome' },
      });
      const last = hits.at(-1);
      return last?.headers['x-api-key'] === 'sk-live-secret' && last.headers['x-token'] === undefined;
    }, 'version 1.0.0 answering again');
    expect((await org.hay.builder.get.query({ pluginId: 'weather-nc' })).version).toBe('1.0.0');

    // the runtime's requests go through the egress proxy: a loopback port not allowed is refused (https: CONNECT)
    const other = port === 65535 ? 1 : port + 1;
    for (const scheme of ['http', 'https']) {
      await org.hay.plugins.configure.mutate({
        pluginId: 'weather-nc',
        configuration: { baseUrl: `${scheme}://127.0.0.1:${other}/api`, apiKey: { set: true } },
      });
      const refused = await org.hay.plugins.invokeTool.mutate({
        pluginId: 'weather-nc',
        toolName: 'weather',
        arguments: { city: 'Rome' },
      });
      expect(refused.isError, scheme).toBe(true);
      expect(text(refused), scheme).toMatch(/^Egress denied/);
    }

    const audit = await org.hay.audit.list.query({ limit: 200 });
    const names = audit.entries.map((r) => r.action);
    expect(names).toContain('builder.save');
    expect(names).toContain('builder.test');
    expect(JSON.stringify(audit)).not.toContain('sk-live-secret');
    expect(JSON.stringify(audit)).not.toContain('sk-test-123');
  });

  it('a member key cannot use the builder, and another org cannot read the definition', async () => {
    const member = await t.admin.admin.createApiKey.mutate({
      organizationId: org.organizationId,
      role: 'member',
    });
    const err = await t
      .client(member.apiKey)
      .builder.get.query({ pluginId: 'weather-nc' })
      .catch((e: unknown) => e);
    expect((err as { data?: { code?: string } }).data?.code).toBe('FORBIDDEN');
    const other = await t.createOrganization('other-org');
    const err2 = await other.hay.builder.get.query({ pluginId: 'weather-nc' }).catch((e: unknown) => e);
    expect((err2 as { data?: { hayCode?: string } }).data?.hayCode).toBe('PLUGIN_NOT_FOUND');
  });
});

describe('the bundled runtime', () => {
  it('validates the definition file again (tenant data) and refuses a bad one naming the pointer', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hay-nocode-'));
    try {
      const def = weatherDefinition('bad-file');
      (def.tools[0] as { url: string }).url = '{{config.baseUrl}}/w/{{params.town}}';
      writeFileSync(path.join(dir, 'hay-no-code.json'), JSON.stringify(def));
      const run = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist/src/builder/runtime/main.js')], {
        cwd: dir,
        input: '',
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('hay-no-code.json/tools/0/url references {{params.town}}');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('no-code builder (default egress)', () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost({ corePlugins: [] });
  });
  afterAll(() => t.close());

  it('builder.test refuses a loopback target when the operator allows nothing', async () => {
    const org = await t.createOrganization('builder-default');
    hits = [];
    const err = await org.hay.builder.test
      .mutate({
        definition: weatherDefinition('weather-nc'),
        toolName: 'weather',
        params: { city: 'x' },
        configuration: { baseUrl: `http://127.0.0.1:${port}`, apiKey: 'k' },
      })
      .catch((e: unknown) => e);
    expect((err as { data?: { hayCode?: string } }).data?.hayCode).toBe('EGRESS_DENIED');
    expect((err as Error).message).toContain('HAY_EGRESS_ALLOW');
    for (const target of ['http://169.254.169.254/latest', `${t.url}/trpc`, 'http://[::ffff:127.0.0.1]:80']) {
      const e = await org.hay.builder.test
        .mutate({
          definition: weatherDefinition('weather-nc'),
          toolName: 'weather',
          params: { city: 'x' },
          configuration: { baseUrl: target, apiKey: 'k' },
        })
        .catch((x: unknown) => x);
      expect((e as { data?: { hayCode?: string } }).data?.hayCode, target).toBe('EGRESS_DENIED');
    }
    expect(hits).toEqual([]);
  });
});

const layers = await detectSandboxLayers({
  cgroupV2Parent: '/sys/fs/cgroup/hay',
  cgroupV1Name: 'hay',
  timeoutMs: 5000,
});
const noBwrap = !layers.bubblewrap.ok || !layers.identity.ok;
if (noBwrap) console.warn('builder: bubblewrap unavailable; the sandboxed no-code plugin test is skipped');

describe.skipIf(noBwrap)('no-code builder under the real sandbox', () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost({
      corePlugins: [],
      config: { sandbox: 'auto', allowUnsandboxedTenantCode: false, egressAllow: `127.0.0.1:${port}` },
    });
    // the sandboxed uid must traverse the temp plugins folder
    chmodSync(t.pluginsDir, 0o755);
  });
  afterAll(async () => {
    await t.close();
    expect(descendantPids()).toEqual([]);
  });

  it('runs the saved plugin in bubblewrap, reaching the allowed server through the egress proxy only', async () => {
    const org = await t.createOrganization('builder-sandboxed');
    await org.hay.builder.save.mutate({ definition: weatherDefinition('weather-sb') });
    await org.hay.plugins.enable.mutate({
      pluginId: 'weather-sb',
      configuration: { baseUrl: `http://127.0.0.1:${port}/api`, apiKey: 'sk-sandboxed' },
    });
    hits = [];
    const r = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'weather-sb',
      toolName: 'weather',
      arguments: { city: 'Lima' },
    });
    expect(text(r)).toBe(JSON.stringify({ temperature: 21 }));
    expect(hits[0]?.url).toBe('/api/weather/Lima');
    expect(hits[0]?.headers['x-api-key']).toBe('sk-sandboxed');
    // another loopback port is refused by the proxy (the operator allowed only the test server's)
    await org.hay.plugins.configure.mutate({
      pluginId: 'weather-sb',
      configuration: {
        baseUrl: `http://127.0.0.1:${port === 65535 ? 1 : port + 1}/api`,
        apiKey: { set: true },
      },
    });
    const denied = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'weather-sb',
      toolName: 'weather',
      arguments: { city: 'Lima' },
    });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toMatch(/^Egress denied/);
  });
});
