import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createOrg,
  startTestHost,
  toolJson,
  trpc,
  uploadZip,
  type TestHost,
} from '../fixtures/adversarial/harness.js';
import { startRemoteMcp, type RemoteMcp } from '../fixtures/egress/remote-mcp.js';
import { descendantPids, waitFor } from '../helpers/processes.js';
import { buildZip } from '../helpers/zip-writer.js';

/**
 * The host-side egress guard with no network namespace (sandbox off, as on a machine without
 * bubblewrap where the operator opted out): remote URLs are still checked in the host, and local plugins
 * that route through HTTP_PROXY (the bundled http-api-connector) reach the proxy's loopback port, which
 * requires the instance's token and enforces the same policy.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
let t: TestHost;
let url: string;
let allowed: RemoteMcp;
let denied: RemoteMcp;
let a: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  allowed = await startRemoteMcp();
  denied = await startRemoteMcp();
  t = await startTestHost({ sandbox: 'off', egressAllow: `127.0.0.1:${allowed.port}` });
  url = t.host.url;
  a = await createOrg(t, 'egress-off');
  const upload = async (manifest: Record<string, unknown>, files: { name: string; data: Buffer }[] = []) => {
    const res = await uploadZip(
      url,
      a.adminKey,
      buildZip([{ name: 'manifest.json', data: JSON.stringify(manifest) }, ...files]),
    );
    if (res.status !== 200) throw new Error(res.raw);
    await trpc(url, 'plugins.enable', a.adminKey, { pluginId: manifest.id });
  };
  await upload({
    id: 'remote-loopback',
    name: 'remote-loopback',
    version: '1.0.0',
    description: 'remote',
    type: ['mcp-connector'],
    capabilities: { mcp: { connection: { type: 'remote', url: denied.url }, transport: 'http' } },
  });
  const probeDir = path.join(here, '..', 'fixtures', 'egress', 'net-plugin');
  const manifest = JSON.parse(await readFile(path.join(probeDir, 'manifest.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  await upload({ ...manifest, id: 'egress-net', permissions: { network: { all: true } } }, [
    { name: 'server.mjs', data: await readFile(path.join(probeDir, 'server.mjs')) },
  ]);
}, 120_000);

afterAll(async () => {
  await t?.dispose();
  await allowed?.close();
  await denied?.close();
  await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
  expect(descendantPids()).toEqual([]);
});

const invoke = (pluginId: string, toolName: string, args: Record<string, unknown> = {}) =>
  trpc<{ isError?: boolean; content: { type: string; text: string }[] }>(
    url,
    'plugins.invokeTool',
    a.memberKey,
    {
      pluginId,
      toolName,
      arguments: args,
    },
  );

it('a remote URL at loopback is refused in the host', async () => {
  const res = await trpc(url, 'plugins.listTools', a.memberKey, { pluginId: 'remote-loopback' }, 'query');
  expect(res.error).toMatchObject({ hayCode: 'EGRESS_DENIED' });
  expect(denied.hits).toEqual([]);
});

it('http-api-connector goes through the token-protected loopback proxy: metadata refused, allowed works', async () => {
  await trpc(url, 'plugins.enable', a.adminKey, {
    pluginId: 'http-api-connector',
    configuration: { baseUrl: 'http://169.254.169.254/latest', apiKey: 'k' },
  });
  const meta = await invoke('http-api-connector', 'http_get', { path: '/meta-data' });
  expect(meta.data?.content[0]?.text).toContain('Egress denied');
  await trpc(url, 'plugins.configure', a.adminKey, {
    pluginId: 'http-api-connector',
    configuration: { baseUrl: `http://127.0.0.1:${allowed.port}/api`, apiKey: 'k' },
  });
  const ok = await invoke('http-api-connector', 'http_get', { path: '/y' });
  expect(ok.data?.content[0]?.text).toBe('plain answer for /api/y');
}, 60_000);

it('a plugin honouring HTTP_PROXY is held to the policy there too', async () => {
  const env = toolJson<{ HTTP_PROXY: string | null }>((await invoke('egress-net', 'env')).data);
  expect(env.HTTP_PROXY).toMatch(/^http:\/\/\*\*\*@127\.0\.0\.1:\d+$/);
  const ok = toolJson<{ status: number; body: string }>(
    (await invoke('egress-net', 'proxy_get', { url: `http://127.0.0.1:${allowed.port}/z` })).data,
  );
  expect(ok).toMatchObject({ status: 200, body: 'plain answer for /z' });
  const refused = toolJson<{ status: number; body: string }>(
    (await invoke('egress-net', 'proxy_get', { url: `http://127.0.0.1:${denied.port}/z` })).data,
  );
  expect(refused.status).toBe(403);
  expect(denied.hits).toEqual([]);
});
