import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSandboxLayers } from '../../src/runtime/sandbox/detect.js';
import {
  createOrg,
  startTestHost,
  toolJson,
  trpc,
  uploadZip,
  type TestHost,
} from '../fixtures/adversarial/harness.js';
import { startRemoteMcp, type RemoteMcp } from '../fixtures/egress/remote-mcp.js';
import { buildZip } from '../helpers/zip-writer.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Attack 3 of issue 9 (SSRF) against a real host: URLs chosen by a tenant (an uploaded manifest's
 * connection.url, a core plugin's serverUrl / baseUrl configuration) may not reach loopback, link-local,
 * metadata or private addresses, the host's own API included; remote error bodies are not quoted back;
 * remote responses are capped. Sandboxed plugins reach the network only through the host's proxy.
 * The operator allows exactly one loopback port (`allowed`); `denied` is another loopback server.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const layers = await detectSandboxLayers({
  cgroupV2Parent: '/sys/fs/cgroup/hay',
  cgroupV1Name: 'hay',
  timeoutMs: 5000,
});
const noBwrap = !layers.bubblewrap.ok || !layers.identity.ok;
if (noBwrap)
  console.warn(
    'egress-host: bubblewrap unavailable; network-namespace tests are skipped (the host-side guard is still tested)',
  );

let t: TestHost;
let url: string;
let allowed: RemoteMcp;
let denied: RemoteMcp;
let a: Awaited<ReturnType<typeof createOrg>>;
let b: Awaited<ReturnType<typeof createOrg>>;

const remoteManifest = (id: string, target: string, transport = 'http') => ({
  id,
  name: id,
  version: '1.0.0',
  description: 'remote plugin for the egress suite',
  type: ['mcp-connector'],
  capabilities: { mcp: { connection: { type: 'remote', url: target }, transport } },
});

async function uploadManifest(
  key: string,
  manifest: Record<string, unknown>,
  files: { name: string; data: Buffer | string }[] = [],
) {
  const res = await uploadZip(
    url,
    key,
    buildZip([{ name: 'manifest.json', data: JSON.stringify(manifest) }, ...files]),
  );
  if (res.status !== 200) throw new Error(`upload ${String(manifest.id)}: ${res.raw}`);
}

beforeAll(async () => {
  allowed = await startRemoteMcp();
  denied = await startRemoteMcp();
  t = await startTestHost({
    sandbox: 'auto',
    egressAllow: `127.0.0.1:${allowed.port}`,
    egressMaxResponseBytes: 64 * 1024,
  });
  url = t.host.url;
  a = await createOrg(t, 'egress-a');
  b = await createOrg(t, 'egress-b');
  const remotes: [string, string][] = [
    ['remote-loopback', denied.url],
    ['remote-admin', `${url}/trpc/admin.listOrganizations`],
    ['remote-metadata', 'http://169.254.169.254/latest/meta-data'],
    ['remote-mapped', `http://[::ffff:127.0.0.1]:${denied.port}/mcp`],
    ['remote-ok', allowed.url],
    ['remote-sse', `${allowed.url}-sse`],
    ['remote-fail', `http://127.0.0.1:${allowed.port}/fail`],
  ];
  for (const [id, target, transport] of [
    ...remotes,
    ['remote-legacy-sse', `http://127.0.0.1:${allowed.port}/sse`, 'sse'],
  ]) {
    await uploadManifest(a.adminKey, remoteManifest(id ?? '', target ?? '', transport));
    const enabled = await trpc(url, 'plugins.enable', a.adminKey, { pluginId: id });
    if (!enabled.data) throw new Error(enabled.raw);
  }
  const probeDir = path.join(here, '..', 'fixtures', 'egress', 'net-plugin');
  const probeManifest = JSON.parse(await readFile(path.join(probeDir, 'manifest.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const server = await readFile(path.join(probeDir, 'server.mjs'));
  await uploadManifest(
    a.adminKey,
    { ...probeManifest, id: 'egress-net', permissions: { network: { hosts: ['127.0.0.1'] } } },
    [{ name: 'server.mjs', data: server }],
  );
  await uploadManifest(a.adminKey, { ...probeManifest, id: 'egress-none' }, [
    { name: 'server.mjs', data: server },
  ]);
  for (const id of ['egress-net', 'egress-none'])
    await trpc(url, 'plugins.enable', a.adminKey, { pluginId: id });
}, 120_000);

afterAll(async () => {
  await t?.dispose();
  await allowed?.close();
  await denied?.close();
  await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
  expect(descendantPids()).toEqual([]);
});

const listTools = (key: string, pluginId: string) =>
  trpc(url, 'plugins.listTools', key, { pluginId }, 'query');
const invoke = (key: string, pluginId: string, toolName: string, args: Record<string, unknown> = {}) =>
  trpc<{ isError?: boolean; content: { type: string; text: string }[] }>(url, 'plugins.invokeTool', key, {
    pluginId,
    toolName,
    arguments: args,
  });

describe('remote plugins whose URL a tenant chose', () => {
  it('an uploaded manifest pointing at a loopback server is refused with a clear egress error', async () => {
    const res = await listTools(a.memberKey, 'remote-loopback');
    expect(res.error).toMatchObject({ code: 'FORBIDDEN', hayCode: 'EGRESS_DENIED', httpStatus: 403 });
    expect(res.error?.message).toContain(
      `Egress denied: plugin remote-loopback (org ${a.id}) may not reach 127.0.0.1:${denied.port}`,
    );
    expect(res.error?.message).toContain('HAY_EGRESS_ALLOW');
    expect(denied.hits).toEqual([]);
  });

  it("an uploaded manifest pointing at the host's own /trpc/admin.* is refused", async () => {
    const res = await listTools(a.memberKey, 'remote-admin');
    expect(res.error).toMatchObject({ hayCode: 'EGRESS_DENIED' });
    expect(res.error?.message).toMatch(/may not reach 127\.0\.0\.1:\d+ \(127\.0\.0\.0\/8/);
  });

  it('metadata and IPv4-mapped loopback URLs are refused', async () => {
    const meta = await listTools(a.memberKey, 'remote-metadata');
    expect(meta.error).toMatchObject({ hayCode: 'EGRESS_DENIED' });
    expect(meta.error?.message).toContain('169.254.169.254:80 (169.254.0.0/16');
    const mapped = await listTools(a.memberKey, 'remote-mapped');
    expect(mapped.error).toMatchObject({ hayCode: 'EGRESS_DENIED' });
    expect(denied.hits).toEqual([]);
  });

  it('an operator-allowed destination works', async () => {
    const res = await invoke(a.memberKey, 'remote-ok', 'echo', { message: 'through the guard' });
    expect(res.data?.content[0]?.text).toBe('through the guard');
  });

  it('a remote response over the cap is a clear RESPONSE_TOO_LARGE error', async () => {
    const res = await invoke(a.memberKey, 'remote-ok', 'big', { bytes: 200_000 });
    expect(res.error).toMatchObject({ code: 'BAD_GATEWAY', hayCode: 'RESPONSE_TOO_LARGE' });
    expect(res.error?.message).toContain('larger than 65536 bytes');
    const small = await invoke(a.memberKey, 'remote-ok', 'big', { bytes: 1_000 });
    expect(small.data?.content[0]?.text).toHaveLength(1_000);
  });

  it('a streamed (SSE) response over the cap fails that call at once with RESPONSE_TOO_LARGE, not a timeout', async () => {
    const started = Date.now();
    const res = await trpc<{ content: { text: string }[] }>(url, 'plugins.invokeTool', a.memberKey, {
      pluginId: 'remote-sse',
      toolName: 'big',
      arguments: { bytes: 200_000 },
    });
    expect(res.error).toMatchObject({ code: 'BAD_GATEWAY', hayCode: 'RESPONSE_TOO_LARGE' });
    expect(res.error?.message).toContain('an event larger than 65536 bytes');
    expect(Date.now() - started).toBeLessThan(15_000);
    // the plugin keeps working for answers under the cap
    const small = await invoke(a.memberKey, 'remote-sse', 'big', { bytes: 1_000 });
    expect(small.data?.content[0]?.text).toHaveLength(1_000);
  });

  it('an event over the cap on a legacy SSE stream fails the call at once and ends that session', async () => {
    const started = Date.now();
    const res = await invoke(a.memberKey, 'remote-legacy-sse', 'big', { bytes: 200_000 });
    expect(res.error).toMatchObject({ code: 'BAD_GATEWAY', hayCode: 'RESPONSE_TOO_LARGE' });
    expect(Date.now() - started).toBeLessThan(15_000);
    // a new session serves answers under the cap
    const small = await invoke(a.memberKey, 'remote-legacy-sse', 'big', { bytes: 1_000 });
    expect(small.data?.content[0]?.text).toHaveLength(1_000);
  });

  it("a remote server's non-2xx body is never quoted back (member key); the status is", async () => {
    const res = await listTools(a.memberKey, 'remote-fail');
    expect(res.error).toBeDefined();
    expect(res.raw).not.toContain('sk-remote-secret');
    expect(res.raw).not.toContain('stack trace');
    expect(res.error?.message).toContain('500');
  });
});

describe('core plugins with a tenant-set URL', () => {
  it('remote-knowledge-base serverUrl at the metadata address or a loopback server is refused', async () => {
    await trpc(url, 'plugins.enable', a.adminKey, {
      pluginId: 'remote-knowledge-base',
      configuration: { serverUrl: 'http://169.254.169.254/mcp' },
    });
    const meta = await listTools(a.memberKey, 'remote-knowledge-base');
    expect(meta.error).toMatchObject({ hayCode: 'EGRESS_DENIED' });
    expect(meta.error?.message).toContain('169.254.169.254');
    await trpc(url, 'plugins.enable', b.adminKey, {
      pluginId: 'remote-knowledge-base',
      configuration: { serverUrl: denied.url },
    });
    const loop = await listTools(b.memberKey, 'remote-knowledge-base');
    expect(loop.error).toMatchObject({ hayCode: 'EGRESS_DENIED' });
    expect(denied.hits).toEqual([]);
  });

  it('http-api-connector baseUrl at 169.254.169.254 is refused; an allowed one works and bodies are capped', async () => {
    const enabled = await trpc(url, 'plugins.enable', a.adminKey, {
      pluginId: 'http-api-connector',
      configuration: { baseUrl: 'http://169.254.169.254/latest', apiKey: 'k' },
    });
    expect(enabled.error).toBeUndefined();
    const meta = await invoke(a.memberKey, 'http-api-connector', 'http_get', { path: '/meta-data' });
    expect(meta.data?.isError).toBe(true);
    expect(meta.data?.content[0]?.text).toContain('Egress denied');

    await trpc(url, 'plugins.enable', b.adminKey, {
      pluginId: 'http-api-connector',
      configuration: { baseUrl: `http://127.0.0.1:${allowed.port}/api`, apiKey: 'k' },
    });
    const ok = await invoke(b.memberKey, 'http-api-connector', 'http_get', { path: '/x' });
    expect(ok.data?.content[0]?.text).toBe('plain answer for /api/x');
    expect(allowed.hits).toContain('/api/x');
    const huge = await invoke(b.memberKey, 'http-api-connector', 'http_get', { path: '/huge' });
    expect(huge.data?.isError).toBe(true);
    expect(huge.data?.content[0]?.text).toContain('exceeds 1048576 bytes');
  }, 60_000);
});

describe.skipIf(noBwrap)('sandboxed tenant plugins (network namespace + proxy)', () => {
  it('a plugin without network permission has no network and no proxy', async () => {
    const env = toolJson<{ HTTP_PROXY: string | null }>(
      (await invoke(a.memberKey, 'egress-none', 'env')).data,
    );
    expect(env.HTTP_PROXY).toBeNull();
    const direct = toolJson<{ connected: boolean; code: string }>(
      (await invoke(a.memberKey, 'egress-none', 'direct', { host: '127.0.0.1', port: allowed.port })).data,
    );
    expect(direct.connected).toBe(false);
  });

  it('a plugin with network.hosts cannot connect directly, only through the proxy, and only where allowed', async () => {
    const env = toolJson<{ HTTP_PROXY: string | null; NODE_USE_ENV_PROXY: string | null }>(
      (await invoke(a.memberKey, 'egress-net', 'env')).data,
    );
    expect(env).toMatchObject({ HTTP_PROXY: 'http://127.0.0.1:3128', NODE_USE_ENV_PROXY: '1' });
    const direct = toolJson<{ connected: boolean }>(
      (await invoke(a.memberKey, 'egress-net', 'direct', { host: '127.0.0.1', port: allowed.port })).data,
    );
    expect(direct.connected).toBe(false);

    const viaProxy = toolJson<{ status: number; body: string }>(
      (
        await invoke(a.memberKey, 'egress-net', 'proxy_get', {
          url: `http://127.0.0.1:${allowed.port}/probe`,
        })
      ).data,
    );
    expect(viaProxy).toMatchObject({ status: 200, body: 'plain answer for /probe' });
    const tunnel = toolJson<{ ok: boolean; response: string }>(
      (await invoke(a.memberKey, 'egress-net', 'tunnel_get', { host: '127.0.0.1', port: allowed.port })).data,
    );
    expect(tunnel.ok).toBe(true);
    expect(tunnel.response).toContain('plain answer for /');

    const refused = toolJson<{ status: number; body: string }>(
      (await invoke(a.memberKey, 'egress-net', 'proxy_get', { url: `http://127.0.0.1:${denied.port}/x` }))
        .data,
    );
    expect(refused.status).toBe(403);
    expect(refused.body).toContain(
      `Egress denied: plugin egress-net (org ${a.id}) may not reach 127.0.0.1:${denied.port}`,
    );
    const unlisted = toolJson<{ status: number; body: string }>(
      (await invoke(a.memberKey, 'egress-net', 'proxy_get', { url: `http://localhost:${allowed.port}/x` }))
        .data,
    );
    expect(unlisted.body).toContain('not in permissions.network.hosts');
    expect(denied.hits).toEqual([]);
  });
});
