import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformTokens } from '../../src/security/platform-token.js';
import { detectSandboxLayers } from '../../src/runtime/sandbox/detect.js';
import {
  REPO_ROOT,
  auditRows,
  createOrg,
  listTree,
  probeZip,
  startTestHost,
  storedState,
  toolJson,
  trpc,
  uploadZip,
  type TestHost,
} from '../fixtures/adversarial/harness.js';
import { startSmtpServer } from '../fixtures/adversarial/smtp.js';
import { buildZip, type ZipEntrySpec } from '../helpers/zip-writer.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * The adversarial suite: one host (sandbox 'auto', real HTTP, real Postgres, real SMTP), two organizations,
 * uploaded probe plugins that try to escape. Each refusal is asserted precisely, and stored state
 * (registry rows, org settings, custom plugin files) is compared before and after.
 */
const layers = await detectSandboxLayers({
  cgroupV2Parent: '/sys/fs/cgroup/hay',
  cgroupV1Name: 'hay',
  timeoutMs: 5000,
});
const noBwrap = !layers.bubblewrap.ok || !layers.identity.ok;
const noCgroup = noBwrap || !layers.cgroup.ok;

const SECRET = 'sk-live-PLAINTEXT-SECRET-4f1c9e';
const HOST_ENV_MARKER = 'host-env-secret-value-93a1';
const PERMISSION_MESSAGE =
  'Plugin probe-net does not have permission to access email. Add "email" to permissions.api in manifest.json';

let t: TestHost;
let url: string;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let loopback: net.Server;
let loopbackPort = 0;
let loopbackConnections = 0;
let a: Awaited<ReturnType<typeof createOrg>>;
let b: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  smtp = await startSmtpServer();
  loopback = net.createServer((s) => {
    loopbackConnections++;
    s.destroy();
  });
  await new Promise<void>((r) => loopback.listen(0, '127.0.0.1', r));
  loopbackPort = (loopback.address() as net.AddressInfo).port;
  t = await startTestHost(
    { sandbox: 'auto', smtpUrl: smtp.url, uploadMaxUncompressedBytes: 5 * 1024 * 1024 },
    {
      ...process.env,
      HAY_HOST_SECRET_MARKER: HOST_ENV_MARKER,
      DATABASE_URL: 'postgres://host-db-url-marker',
    },
  );
  url = t.host.url;
  // World-readable on purpose: only the sandbox's mount namespace may hide it.
  writeFileSync(path.join(t.dataDir, 'canary.txt'), 'host data canary', { mode: 0o644 });
  a = await createOrg(t, 'org-a');
  b = await createOrg(t, 'org-b');
  const uploads: [string, Record<string, unknown>][] = [
    ['probe', { id: 'probe', runtime: { limits: { memoryMb: 64, maxProcesses: 32 } } }],
    ['probe-net', { id: 'probe-net', permissions: { network: { all: true } } }],
  ];
  for (const [id, manifest] of uploads) {
    const res = await uploadZip(url, a.adminKey, await probeZip(manifest));
    if (res.status !== 200) throw new Error(`upload ${id}: ${res.raw}`);
  }
  const enabled = await trpc(url, 'plugins.enable', a.adminKey, {
    pluginId: 'probe',
    configuration: { apiKey: SECRET, label: 'visible' },
  });
  if (!enabled.data) throw new Error(enabled.raw);
  await trpc(url, 'plugins.enable', a.adminKey, { pluginId: 'probe-net' });
}, 120_000);

afterAll(async () => {
  await t?.dispose();
  await smtp?.close();
  await new Promise<void>((r) => (loopback ? loopback.close(() => r()) : r()));
  await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
  expect(descendantPids()).toEqual([]);
});

const invoke = (key: string, pluginId: string, toolName: string, args: Record<string, unknown> = {}) =>
  trpc(url, 'plugins.invokeTool', key, { pluginId, toolName, arguments: args });

describe('cross-organization isolation', () => {
  it("org B cannot see, read, enable, configure, invoke, uninstall or roll back A's custom plugin", async () => {
    const before = await storedState(t);
    const list = await trpc<{ id: string }[]>(url, 'plugins.list', b.adminKey, undefined, 'query');
    expect(list.data?.map((p) => p.id)).not.toContain('probe');
    const notFound = { code: 'NOT_FOUND', hayCode: 'PLUGIN_NOT_FOUND', message: 'plugin "probe" not found' };
    expect((await trpc(url, 'plugins.get', b.adminKey, { pluginId: 'probe' }, 'query')).error).toMatchObject(
      notFound,
    );
    expect((await trpc(url, 'plugins.enable', b.adminKey, { pluginId: 'probe' })).error).toMatchObject(
      notFound,
    );
    expect(
      (await trpc(url, 'plugins.configure', b.adminKey, { pluginId: 'probe', configuration: { label: 'x' } }))
        .error,
    ).toMatchObject(notFound);
    expect((await invoke(b.memberKey, 'probe', 'echo', { message: 'x', count: 1 })).error).toMatchObject(
      notFound,
    );
    expect(
      (await trpc(url, 'plugins.listTools', b.memberKey, { pluginId: 'probe' }, 'query')).error,
    ).toMatchObject(notFound);
    expect((await trpc(url, 'plugins.uninstall', b.adminKey, { pluginId: 'probe' })).error).toMatchObject(
      notFound,
    );
    expect((await trpc(url, 'plugins.rollback', b.adminKey, { pluginId: 'probe' })).error).toMatchObject(
      notFound,
    );
    expect(
      (await trpc(url, 'plugins.metrics', b.adminKey, { pluginId: 'probe' }, 'query')).error,
    ).toMatchObject(notFound);
    expect(await storedState(t)).toEqual(before);
  });

  it("uploading the same id in org B creates B's own plugin and leaves A's untouched", async () => {
    const aFolder = path.join(t.pluginsDir, 'custom', a.id);
    const aFiles = await listTree(aFolder);
    const aRows = (await storedState(t)).registry.filter(
      (r) => (r as { organizationId: string | null }).organizationId === a.id,
    );
    const res = await uploadZip(
      url,
      b.adminKey,
      await probeZip({ id: 'probe', version: '9.9.9', name: 'B probe' }),
    );
    expect(res.body).toEqual({ pluginId: 'probe', version: '9.9.9' });
    expect(await listTree(aFolder)).toEqual(aFiles);
    const after = await storedState(t);
    expect(
      after.registry.filter((r) => (r as { organizationId: string | null }).organizationId === a.id),
    ).toEqual(aRows);
    expect(
      after.registry.filter(
        (r) =>
          (r as { organizationId: string | null; pluginId: string }).organizationId === b.id &&
          (r as { pluginId: string }).pluginId === 'probe',
      ),
    ).toHaveLength(1);
    expect(
      (await trpc<{ version: string }>(url, 'plugins.get', a.memberKey, { pluginId: 'probe' }, 'query')).data
        ?.version,
    ).toBe('1.0.0');
    expect(
      (await trpc<{ version: string }>(url, 'plugins.get', b.memberKey, { pluginId: 'probe' }, 'query')).data
        ?.version,
    ).toBe('9.9.9');
    // B's copy is not enabled just because A's is
    expect((await invoke(b.memberKey, 'probe', 'echo', { message: 'x', count: 1 })).error).toMatchObject({
      hayCode: 'PLUGIN_NOT_ENABLED',
    });
    // and B uninstalling its own copy does not touch A's
    expect((await trpc(url, 'plugins.uninstall', b.adminKey, { pluginId: 'probe' })).data).toEqual({
      success: true,
    });
    expect(await listTree(aFolder)).toEqual(aFiles);
    expect(
      (await trpc<{ status: string }>(url, 'plugins.get', a.memberKey, { pluginId: 'probe' }, 'query')).data
        ?.status,
    ).toBe('ok');
  });
});

describe('API tokens and roles', () => {
  it('missing, forged and revoked keys are 401 and audited; nothing changes', async () => {
    const before = await storedState(t);
    const failedBefore = (await auditRows(t)).filter((r) => r.action === 'auth.failed').length;
    const none = await trpc(url, 'plugins.list', undefined, undefined, 'query');
    expect(none.error).toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'missing bearer token (Authorization: Bearer <token>)',
    });
    const forged = await trpc(url, 'plugins.enable', `hay_${'a'.repeat(40)}`, { pluginId: 'probe' });
    expect(forged.error).toMatchObject({ code: 'UNAUTHORIZED', message: 'invalid or revoked API key' });
    const adminish = await trpc(
      url,
      'admin.listOrganizations',
      'test-admin-token-0123456789x',
      undefined,
      'query',
    );
    expect(adminish.error?.code).toBe('UNAUTHORIZED');

    const extra = await trpc<{ apiKey: string; keyId: string }>(
      url,
      'admin.createApiKey',
      t.host.adminToken,
      { organizationId: a.id, role: 'admin' },
    );
    const key = extra.data?.apiKey ?? '';
    expect((await trpc(url, 'plugins.list', key, undefined, 'query')).data).toBeDefined();
    expect(
      (await trpc(url, 'admin.revokeApiKey', t.host.adminToken, { keyId: extra.data?.keyId })).data,
    ).toMatchObject({ success: true });
    const revoked = await trpc(url, 'plugins.disable', key, { pluginId: 'probe' });
    expect(revoked.error).toMatchObject({ code: 'UNAUTHORIZED', message: 'invalid or revoked API key' });
    const revokedUpload = await uploadZip(url, key, await probeZip({ id: 'probe' }));
    expect(revokedUpload.status).toBe(401);

    const after = await storedState(t);
    expect(after.registry).toEqual(before.registry);
    expect(after.instances).toEqual(before.instances);
    expect(after.files).toEqual(before.files);
    const failed = (await auditRows(t)).filter((r) => r.action === 'auth.failed');
    expect(failed.length - failedBefore).toBe(5);
    expect(failed.every((r) => r.outcome === 'denied' && r.organizationId === null)).toBe(true);
    expect(JSON.stringify(failed)).not.toContain(key);
  });

  it('wrong scope is 403: member key on admin actions, admin token on plugins.*, org key on admin.*', async () => {
    const before = await storedState(t);
    const memberMsg = 'this call needs an organization API key with the admin role';
    for (const [proc, input] of [
      ['plugins.enable', { pluginId: 'probe-net' }],
      ['plugins.disable', { pluginId: 'probe' }],
      ['plugins.configure', { pluginId: 'probe', configuration: { label: 'member' } }],
      ['plugins.uninstall', { pluginId: 'probe' }],
      ['plugins.rollback', { pluginId: 'probe' }],
    ] as const)
      expect((await trpc(url, proc, a.memberKey, input)).error, proc).toMatchObject({
        code: 'FORBIDDEN',
        message: memberMsg,
      });
    const adminOnPlugins = await trpc(url, 'plugins.list', t.host.adminToken, undefined, 'query');
    expect(adminOnPlugins.error).toMatchObject({
      code: 'FORBIDDEN',
      message: 'this call needs an organization API key, not the admin token',
    });
    expect((await invoke(t.host.adminToken, 'probe', 'echo', { message: 'x', count: 1 })).error?.code).toBe(
      'FORBIDDEN',
    );
    for (const key of [a.adminKey, a.memberKey]) {
      expect((await trpc(url, 'admin.listOrganizations', key, undefined, 'query')).error).toMatchObject({
        code: 'FORBIDDEN',
        message: 'this call needs the admin token',
      });
      expect(
        (await trpc(url, 'admin.createApiKey', key, { organizationId: b.id, role: 'admin' })).error?.code,
      ).toBe('FORBIDDEN');
      expect((await trpc(url, 'admin.auditLog', key, {}, 'query')).error?.code).toBe('FORBIDDEN');
    }
    const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${a.adminKey}` } });
    expect(metrics.status).toBe(401);
    expect(await storedState(t)).toEqual(before);
  });
});

describe('platform API tokens and permissions', () => {
  const send = (token: string) =>
    fetch(`${url}/v1/platform/email/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'x@example.com', subject: 's', text: 't' }),
    });

  /** Without bubblewrap the uploaded probe cannot run (refused): the call is made with the token it would get. */
  const platformCall = async (path: string, body: unknown, token?: string) => {
    if (!noBwrap) {
      const res = await invoke(a.memberKey, 'probe-net', 'platform', {
        path,
        body,
        ...(token ? { token } : {}),
      });
      expect(res.error).toBeUndefined();
      return toolJson(res.data);
    }
    expect((await invoke(a.memberKey, 'probe-net', 'platform', { path, body })).error?.hayCode).toBe(
      'SANDBOX_UNAVAILABLE',
    );
    const p = t.host.services.registry.get(a.id, 'probe-net');
    const issued = new PlatformTokens({
      secret: t.host.services.keyRing.deriveKey('platform-token'),
      ttlMs: 60_000,
    });
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token ?? (await issued.issue({ orgId: a.id, pluginId: 'probe-net', pluginKey: p?.key ?? '', apis: [] })).token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it('a plugin without "email" in permissions.api gets 403 with the guide\'s message, audited; no mail sent', async () => {
    const res = await platformCall('/v1/platform/email/send', {
      to: 'victim@example.com',
      subject: 'spam',
      text: 'spam',
    });
    expect(res).toEqual({
      status: 403,
      body: { error: { code: 'PERMISSION_DENIED', message: PERMISSION_MESSAGE } },
    });
    const denied = (await auditRows(t)).filter((r) => r.action === 'permission.denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      organizationId: a.id,
      pluginId: 'probe-net',
      actor: 'plugin:probe-net',
      outcome: 'denied',
      details: { api: 'email', method: 'send' },
    });
    expect(smtp.messages).toHaveLength(0);
  });

  it('garbage, forged, foreign-key and expired platform tokens are 401', async () => {
    const garbage = await platformCall('/v1/platform/email/send', {}, 'garbage');
    expect(garbage).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });

    const secret = t.host.services.keyRing.deriveKey('platform-token');
    const subject = { orgId: a.id, pluginId: 'probe-net', pluginKey: 'k', apis: [] as string[] };
    const real = (await new PlatformTokens({ secret, ttlMs: 60_000 }).issue(subject)).token;
    const [prefix, , sig] = real.split('.');
    const claims = Buffer.from(
      JSON.stringify({ ...subject, apis: ['email'], exp: Date.now() + 60_000, jti: 'x' }),
    ).toString('base64url');
    const forged = await send(`${prefix}.${claims}.${sig}`);
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({
      error: { code: 'UNAUTHORIZED', message: 'platform token signature is invalid' },
    });

    const foreign = (await new PlatformTokens({ ttlMs: 60_000 }).issue({ ...subject, apis: ['email'] }))
      .token;
    expect((await send(foreign)).status).toBe(401);

    const expired = (
      await new PlatformTokens({ secret, ttlMs: 1_000, now: () => Date.now() - 60_000 }).issue({
        ...subject,
        apis: ['email'],
      })
    ).token;
    const exp = await send(expired);
    expect(exp.status).toBe(401);
    expect(((await exp.json()) as { error: { message: string } }).error.message).toMatch(
      /^platform token expired at /,
    );
    expect(smtp.messages).toHaveLength(0);
  });

  it.skipIf(noBwrap)(
    'the bundled email plugin (permissions.api email) reaches the host from inside the sandbox and mail arrives',
    async () => {
      expect((await trpc(url, 'plugins.enable', a.adminKey, { pluginId: 'email-notifier' })).data).toEqual({
        success: true,
      });
      const res = await invoke(a.memberKey, 'email-notifier', 'send_email', {
        to: 'ops@example.com',
        subject: 'Sandboxed',
        text: 'from the sandbox',
      });
      expect(res.error).toBeUndefined();
      expect((res.data as { isError?: boolean }).isError).toBeFalsy();
      await waitFor(() => smtp.messages.length === 1, 'mail at the SMTP server');
      expect(smtp.messages[0]).toMatchObject({ to: ['ops@example.com'], body: 'from the sandbox' });
      expect(smtp.messages[0]?.headers.get('x-hay-org')).toBe(a.id);
      expect(smtp.messages[0]?.headers.get('subject')).toBe('Sandboxed');
    },
    120_000,
  );
});

describe.skipIf(noBwrap)('sandboxed plugin process', () => {
  it('sees no host env, host data dir, other plugins or other orgs; gets only its own config', async () => {
    const res = toolJson<{
      keys: string[];
      env: Record<string, string>;
      probeApiKeySha256: string;
      hasApiToken: boolean;
      uid: number;
    }>((await invoke(a.memberKey, 'probe', 'env')).data);
    expect(res.keys).not.toContain('HAY_HOST_SECRET_MARKER');
    expect(res.keys).not.toContain('DATABASE_URL');
    expect(res.keys).not.toContain('HAY_ADMIN_TOKEN');
    expect(JSON.stringify(res.env)).not.toContain(HOST_ENV_MARKER);
    expect(res.env.HAY_ORG_ID).toBe(a.id);
    expect(res.env.HAY_PLUGIN_DATA_DIR).toBe('/data');
    expect(res.hasApiToken).toBe(true);
    expect(res.probeApiKeySha256).toBe(createHash('sha256').update(SECRET).digest('hex'));
    expect(res.uid).not.toBe(0);

    const read = async (p: string) =>
      toolJson<{ ok: boolean; code?: string }>(
        (await invoke(a.memberKey, 'probe', 'read_file', { path: p })).data,
      );
    for (const p of [
      path.join(t.dataDir, 'canary.txt'),
      path.join(t.dataDir, 'encryption.key'),
      path.join(t.pluginsDir, 'custom', a.id, 'probe-net', 'manifest.json'),
      path.join(t.pluginsDir, 'core', 'email-notifier', 'manifest.json'),
    ])
      expect(await read(p), p).toEqual({ ok: false, code: 'ENOENT' });
    expect(JSON.stringify(await read('/proc/1/environ'))).not.toContain(HOST_ENV_MARKER);
    expect(JSON.stringify(await read(`/proc/${process.pid}/environ`))).not.toContain(HOST_ENV_MARKER);
    expect(await read(path.join(t.pluginsDir, 'custom', a.id, 'probe', 'manifest.json'))).toMatchObject({
      ok: true,
    });
  });

  it('can write only its own data folder', async () => {
    const write = async (p: string) =>
      toolJson<{ ok: boolean; code?: string }>(
        (await invoke(a.memberKey, 'probe', 'write_file', { path: p })).data,
      );
    const own = path.join(t.pluginsDir, 'custom', a.id, 'probe', 'dropped.txt');
    expect(await write(own)).toMatchObject({ ok: false, code: 'EROFS' });
    expect(existsSync(own)).toBe(false);
    expect((await write('/etc/hay-dropped')).ok).toBe(false);
    expect((await write(path.join(t.dataDir, 'dropped.txt'))).ok).toBe(false);
    expect(existsSync(path.join(t.dataDir, 'dropped.txt'))).toBe(false);
    expect(await write('/data/state.txt')).toEqual({ ok: true });
    expect(await readFile(path.join(t.dataDir, 'plugin-data', a.id, 'probe', 'state.txt'), 'utf8')).toBe(
      'written by plugin',
    );
  });

  it('cannot open a socket to a loopback server without network permission', async () => {
    const res = toolJson<{ connected: boolean; code: string }>(
      (await invoke(a.memberKey, 'probe', 'connect', { host: '127.0.0.1', port: loopbackPort })).data,
    );
    expect(res.connected).toBe(false);
    expect(['ECONNREFUSED', 'ENETUNREACH']).toContain(res.code);
    expect(loopbackConnections).toBe(0);
  });

  it.skipIf(noCgroup)('cannot fork without bound (process limit)', async () => {
    const res = toolJson<{ started: number; failed: number; count: number }>(
      (await invoke(a.memberKey, 'probe', 'fork', { count: 100 })).data,
    );
    expect(res.started).toBeLessThan(32);
    expect(res.failed).toBeGreaterThan(0);
  });

  it.skipIf(noCgroup)(
    'exhausting memory kills it by the limit, reported in state and audit; the next call starts fresh',
    async () => {
      const hostPid = async () => {
        const list = await trpc<{ pluginId: string; state: string; pid: number | null }[]>(
          url,
          'plugins.instances',
          a.memberKey,
          undefined,
          'query',
        );
        return list.data?.find((i) => i.pluginId === 'probe' && i.state === 'running')?.pid ?? null;
      };
      expect(
        toolJson((await invoke(a.memberKey, 'probe', 'echo', { message: 'a', count: 1 })).data),
      ).toMatchObject({ echoed: 'a' });
      const pidBefore = await hostPid();
      expect(pidBefore).toBeGreaterThan(1);
      const res = await invoke(a.memberKey, 'probe', 'memory');
      expect(res.error).toMatchObject({ code: 'BAD_GATEWAY', hayCode: 'INSTANCE_CRASHED' });
      expect(res.error?.message).toMatch(/killed by the sandbox memory limit/);
      const inst = await trpc<{ pluginId: string; state: string; lastError: string | null }[]>(
        url,
        'plugins.instances',
        a.memberKey,
        undefined,
        'query',
      );
      const probe = inst.data?.find((i) => i.pluginId === 'probe');
      expect(probe?.state).toBe('failed');
      expect(probe?.lastError).toMatch(/killed by the sandbox memory limit/);
      const killed = (await auditRows(t)).filter((r) => r.action === 'instance.killed');
      expect(killed).toHaveLength(1);
      expect(killed[0]).toMatchObject({ organizationId: a.id, pluginId: 'probe' });
      const again = await invoke(a.memberKey, 'probe', 'echo', { message: 'b', count: 1 });
      expect(toolJson<{ echoed: string; pid: number }>(again.data).echoed).toBe('b');
      const pidAfter = await hostPid();
      expect(pidAfter).toBeGreaterThan(1);
      expect(pidAfter).not.toBe(pidBefore);
    },
    60_000,
  );
});

describe('malicious uploads through the real route', () => {
  const manifest = JSON.stringify({ id: 'evil', name: 'Evil', version: '1.0.0', type: ['mcp-connector'] });
  const cases: [string, () => Buffer, RegExp][] = [
    [
      'zip-slip',
      () =>
        buildZip([
          { name: 'manifest.json', data: manifest },
          { name: '../../evil.js', data: 'pwned' },
        ]),
      /"\.\.\/\.\.\/evil\.js" has a "\.\." path segment/,
    ],
    [
      'absolute path',
      () =>
        buildZip([
          { name: 'manifest.json', data: manifest },
          { name: '/tmp/hay-evil.js', data: 'pwned' },
        ]),
      /"\/tmp\/hay-evil\.js" has an absolute path/,
    ],
    [
      'symlink',
      () =>
        buildZip([
          { name: 'manifest.json', data: manifest },
          { name: 'link', data: '/etc/passwd', unixMode: 0o120777 },
        ]),
      /"link" is a symbolic link; symlinks are not allowed/,
    ],
    [
      'zip bomb',
      () =>
        buildZip([
          { name: 'manifest.json', data: manifest },
          { name: 'bomb.bin', data: Buffer.alloc(50 * 1024 * 1024) },
        ]),
      /inflates to more than 5242880 bytes \(HAY_UPLOAD_MAX_UNCOMPRESSED_BYTES\)/,
    ],
    [
      'zip bomb with lying header',
      () =>
        buildZip([
          { name: 'manifest.json', data: manifest },
          { name: 'bomb.bin', data: Buffer.alloc(4 * 1024 * 1024), declaredSize: 1000 },
        ]),
      /"bomb\.bin" inflates to more than the 1000 bytes its header declares/,
    ],
  ];
  for (const [name, zip, message] of cases) {
    it(`refuses ${name} (400) and stores nothing`, async () => {
      const before = await storedState(t);
      const body = zip();
      expect(body.length).toBeLessThan(200 * 1024);
      const res = await uploadZip(url, a.adminKey, body);
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('UPLOAD_INVALID');
      expect(res.body.error?.message).toMatch(message);
      expect(await storedState(t)).toEqual(before);
      expect(existsSync(path.join(t.pluginsDir, 'evil.js'))).toBe(false);
      expect(existsSync('/tmp/hay-evil.js')).toBe(false);
    });
  }

  it('refuses a manifest id colliding with a core plugin (409) and stores nothing', async () => {
    const before = await storedState(t);
    const res = await uploadZip(url, a.adminKey, await probeZip({ id: 'hay-plugin-test' }));
    expect(res.status).toBe(409);
    expect(res.body.error).toEqual({
      code: 'CONFLICT',
      message: 'plugin id "hay-plugin-test" belongs to a core plugin; choose another id in manifest.json',
    });
    expect(await storedState(t)).toEqual(before);
  });

  it('the bomb payload compresses small (sanity of the case above)', () => {
    expect(deflateRawSync(Buffer.alloc(50 * 1024 * 1024)).length).toBeLessThan(100 * 1024);
  });
});

describe('input validation', () => {
  it.skipIf(noBwrap)(
    'invalid tool arguments are BAD_REQUEST naming the JSON path and rule, before the plugin runs',
    async () => {
      const wrongType = await invoke(a.memberKey, 'probe', 'echo', { message: 42, count: 1 });
      expect(wrongType.error).toMatchObject({ code: 'BAD_REQUEST', hayCode: 'ARGUMENTS_INVALID' });
      expect(wrongType.error?.message).toMatch(/^invalid arguments for tool echo: \/message must be string/);
      const missing = await invoke(a.memberKey, 'probe', 'echo', { message: 'x' });
      expect(missing.error?.message).toMatch(/\/ must have required property "count"/);
      const range = await invoke(a.memberKey, 'probe', 'echo', { message: 'x', count: 0 });
      expect(range.error?.message).toMatch(/\/count must be >= 1/);
      const badId = await trpc(url, 'plugins.get', a.memberKey, { pluginId: '../../etc' }, 'query');
      expect(badId.error?.code).toBe('BAD_REQUEST');
    },
  );

  it('invalid tool arguments of a core plugin are BAD_REQUEST (runs with and without bubblewrap)', async () => {
    await trpc(url, 'plugins.enable', a.adminKey, { pluginId: 'hay-plugin-test' });
    const wrongType = await invoke(a.memberKey, 'hay-plugin-test', 'echo', { message: 42 });
    expect(wrongType.error).toMatchObject({ code: 'BAD_REQUEST', hayCode: 'ARGUMENTS_INVALID' });
    expect(wrongType.error?.message).toMatch(/^invalid arguments for tool echo: \/message must be string/);
  });
});

describe('secrets never come back out', () => {
  it('API responses show encrypted fields masked', async () => {
    const get = await trpc<{ configuration: Record<string, unknown> }>(
      url,
      'plugins.get',
      a.adminKey,
      { pluginId: 'probe' },
      'query',
    );
    expect(get.data?.configuration.label).toBe('visible');
    expect(get.data?.configuration.apiKey).not.toBe(SECRET);
    const configure = await trpc(url, 'plugins.configure', a.adminKey, {
      pluginId: 'probe',
      configuration: { label: 'still visible' },
    });
    expect(configure.data).toMatchObject({ success: true });
    const responses = [
      get.raw,
      configure.raw,
      (await trpc(url, 'plugins.list', a.adminKey, undefined, 'query')).raw,
      (await trpc(url, 'plugins.get', a.memberKey, { pluginId: 'probe' }, 'query')).raw,
      (await trpc(url, 'plugins.instances', a.memberKey, undefined, 'query')).raw,
      (await trpc(url, 'audit.list', a.adminKey, {}, 'query')).raw,
      (await trpc(url, 'admin.auditLog', t.host.adminToken, {}, 'query')).raw,
    ];
    for (const r of responses) expect(r).not.toContain(SECRET);
  });

  it('no log line, audit row or stored configuration contains the plaintext', async () => {
    expect(t.logLines.length).toBeGreaterThan(10);
    expect(t.logLines.filter((l) => l.includes(SECRET))).toEqual([]);
    expect(t.logLines.filter((l) => l.includes(HOST_ENV_MARKER))).toEqual([]);
    const rows = await auditRows(t);
    expect(rows.some((r) => r.action === 'plugin.configure' && r.pluginId === 'probe')).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(SECRET);
    const stored = await t.host.services.settings.allStored();
    expect(stored.length).toBeGreaterThan(0);
    expect(JSON.stringify(stored)).not.toContain(SECRET);
  });

  it('key rotation re-encrypts every secret; values still decrypt and the old key is retired', async () => {
    const ring = t.host.services.keyRing;
    const oldIds = ring.keyIds();
    const storedBefore = JSON.stringify(await t.host.services.settings.allStored());
    const result = await t.host.rotateKeys();
    expect(result.reencrypted).toBeGreaterThanOrEqual(1);
    expect(oldIds).not.toContain(result.keyId);
    expect(ring.keyIds()).toEqual([result.keyId]);
    const storedAfter = JSON.stringify(await t.host.services.settings.allStored());
    expect(storedAfter).not.toEqual(storedBefore);
    expect(storedAfter).not.toContain(SECRET);
    const p = t.host.services.registry.get(a.id, 'probe');
    if (!p?.manifest) throw new Error('probe not registered');
    const values = await t.host.services.settings.runtimeValues(a.id, p.key, p.manifest.configSchema ?? {});
    expect(values.apiKey).toBe(SECRET);
    const rotated = (await auditRows(t)).filter((r) => r.action === 'secrets.rotate');
    expect(rotated).toHaveLength(1);
    expect(JSON.stringify(rotated)).not.toContain(SECRET);
  });
});

describe('audit query', () => {
  it('an organization reads only its own entries; the admin reads all', async () => {
    const own = await trpc<{ entries: { organizationId: string | null }[] }>(
      url,
      'audit.list',
      a.memberKey,
      { limit: 500 },
      'query',
    );
    expect(own.data?.entries.length).toBeGreaterThan(5);
    expect(own.data?.entries.every((e) => e.organizationId === a.id)).toBe(true);
    const other = await trpc<{ entries: { organizationId: string | null }[] }>(
      url,
      'audit.list',
      b.memberKey,
      { limit: 500 },
      'query',
    );
    expect(other.data?.entries.length).toBeGreaterThan(0);
    expect(other.data?.entries.every((e) => e.organizationId === b.id)).toBe(true);
    // an organizationId in the input is not part of audit.list's input: it is dropped, never obeyed
    const smuggle = await trpc<{ entries: { organizationId: string | null }[] }>(
      url,
      'audit.list',
      b.memberKey,
      { organizationId: a.id },
      'query',
    );
    expect(smuggle.data?.entries.length).toBeGreaterThan(0);
    expect(smuggle.data?.entries.every((e) => e.organizationId === b.id)).toBe(true);
    const all = await trpc<{ entries: { organizationId: string | null; action: string }[] }>(
      url,
      'admin.auditLog',
      t.host.adminToken,
      { limit: 500 },
      'query',
    );
    const orgs = new Set(all.data?.entries.map((e) => e.organizationId));
    expect(orgs.has(a.id) && orgs.has(b.id) && orgs.has(null)).toBe(true);
    expect(all.data?.entries.some((e) => e.action === 'auth.failed')).toBe(true);
  });

  it('filters by plugin and action, and pages with a cursor', async () => {
    // its own rows, from a core plugin: they exist with and without bubblewrap
    const query = { pluginId: 'hay-plugin-test', action: 'tool.invoke', limit: 500 };
    type Entries = { entries: { pluginId: string; action: string }[] };
    const before = (await trpc<Entries>(url, 'audit.list', a.memberKey, query, 'query')).data?.entries ?? [];
    expect(
      (await trpc(url, 'plugins.enable', a.adminKey, { pluginId: 'hay-plugin-test' })).error,
    ).toBeUndefined();
    for (let i = 0; i < 5; i++)
      expect(
        (await invoke(a.memberKey, 'hay-plugin-test', 'echo', { message: `m${i}` })).error,
      ).toBeUndefined();
    const filtered = await trpc<Entries>(url, 'audit.list', a.memberKey, query, 'query');
    expect(filtered.data?.entries.length).toBe(before.length + 5);
    expect(
      filtered.data?.entries.every((e) => e.pluginId === 'hay-plugin-test' && e.action === 'tool.invoke'),
    ).toBe(true);

    const ids: number[] = [];
    let cursor: number | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await trpc<{ entries: { id: number }[]; nextCursor: number | null }>(
        url,
        'audit.list',
        a.memberKey,
        { pluginId: 'hay-plugin-test', action: 'tool.invoke', limit: 2, ...(cursor ? { cursor } : {}) },
        'query',
      );
      expect(res.data?.entries.length).toBeLessThanOrEqual(2);
      ids.push(...(res.data?.entries.map((e) => e.id) ?? []));
      if (res.data?.nextCursor == null) break;
      cursor = res.data.nextCursor;
    }
    expect(ids).toEqual(filtered.data?.entries.map((e) => (e as unknown as { id: number }).id));
    expect([...ids].sort((x, y) => y - x)).toEqual(ids);
  });
});

/**
 * Tenant code (custom/uploaded plugins) runs only inside the sandbox: install, build and start. Each attack
 * runs twice: on this machine's sandbox (skipped without bubblewrap), and on a host that sees no bubblewrap
 * (hideSandboxLayers), where tenant code must be refused before any of it runs while core plugins keep working.
 */
const variants = [
  { name: 'with bubblewrap', hide: undefined, skip: noBwrap },
  { name: 'with bubblewrap absent', hide: ['bubblewrap'], skip: false },
] as const;
if (noBwrap)
  console.warn('SKIPPING the "with bubblewrap" tenant attacks: bubblewrap is not usable on this machine');

describe.each(variants)('tenant install, build and start $name', ({ hide, skip }) => {
  let h: TestHost;
  let o: Awaited<ReturnType<typeof createOrg>>;
  let other: Awaited<ReturnType<typeof createOrg>>;
  let secrets: string[];
  const refused = hide !== undefined;
  const tmpMarker = `/tmp/hay-tenant-pwned-${process.pid}-${hide ? 'nobwrap' : 'bwrap'}`;

  beforeAll(async () => {
    if (skip) return;
    h = await startTestHost(
      { sandbox: 'auto' },
      { ...process.env, HAY_HOST_SECRET_MARKER: HOST_ENV_MARKER },
      hide,
    );
    o = await createOrg(h, 'tenant');
    other = await createOrg(h, 'other-tenant');
    const res = await uploadZip(h.host.url, other.adminKey, await probeZip({ id: 'victim' }));
    if (res.status !== 200) throw new Error(res.raw);
    secrets = [
      h.host.adminToken,
      (await readFile(path.join(h.dataDir, 'encryption.key'), 'utf8')).trim(),
      HOST_ENV_MARKER,
    ];
  }, 120_000);

  afterAll(async () => {
    await h?.dispose();
  });

  /** Shell text that tries every escape: host secrets, another org's files, writes outside, host env. */
  const attackScript = () => {
    const victim = path.join(h.pluginsDir, 'custom', other.id, 'victim', 'manifest.json');
    return [
      'env',
      `cat ${path.join(h.dataDir, 'admin-token')}`,
      `cat ${path.join(h.dataDir, 'encryption.key')}`,
      `cat ${victim}`,
      `echo pwned > ${path.join(h.pluginsDir, 'pwned.txt')}`,
      `echo pwned > ${path.join(h.pluginsDir, 'custom', other.id, 'victim', 'pwned.txt')}`,
      `echo pwned > ${tmpMarker}`,
      'echo ran > ran.txt',
      'exit 1',
    ].join('; ');
  };

  const uploadAndCall = async (id: string, manifest: Record<string, unknown>, extra: ZipEntrySpec[]) => {
    const res = await uploadZip(h.host.url, o.adminKey, await probeZip({ id, ...manifest }, extra));
    expect(res.status, res.raw).toBe(200);
    expect((await trpc(h.host.url, 'plugins.enable', o.adminKey, { pluginId: id })).data).toEqual({
      success: true,
    });
    return trpc(h.host.url, 'plugins.invokeTool', o.memberKey, {
      pluginId: id,
      toolName: 'echo',
      arguments: { message: 'x', count: 1 },
    });
  };

  const expectNothingEscaped = async (id: string, message: string) => {
    for (const s of secrets) expect(message).not.toContain(s);
    for (const p of [h.dataDir, h.pluginsDir, REPO_ROOT]) expect(message).not.toContain(p);
    expect(message).not.toContain('adversarial-probe'); // the victim manifest's content
    expect(existsSync(path.join(h.pluginsDir, 'pwned.txt'))).toBe(false);
    expect(existsSync(path.join(h.pluginsDir, 'custom', other.id, 'victim', 'pwned.txt'))).toBe(false);
    expect(existsSync(tmpMarker)).toBe(false);
    // without the sandbox nothing of the tenant's ran at all
    if (refused) expect(existsSync(path.join(h.pluginsDir, 'custom', o.id, id, 'ran.txt'))).toBe(false);
    const logs = h.logLines.join('\n');
    for (const s of secrets) expect(logs).not.toContain(s);
  };

  const expectRefused = (res: Awaited<ReturnType<typeof trpc>>) => {
    expect(res.error).toMatchObject({ code: 'PRECONDITION_FAILED', hayCode: 'SANDBOX_UNAVAILABLE' });
    expect(res.error?.message).toContain('runs only inside the sandbox');
    expect(res.error?.message).toContain('bubblewrap (bwrap binary not found');
    expect(res.error?.message).toContain('apt-get install bubblewrap');
  };

  it.skipIf(skip)(
    'installCommand `sh -c ...` runs in the sandbox (or not at all) and echoes nothing of the host',
    async () => {
      const res = await uploadAndCall(
        'evil-install',
        { capabilities: { mcp: { ...probeMcp(), installCommand: `sh -c '${attackScript()}'` } } },
        [],
      );
      if (refused) expectRefused(res);
      else {
        expect(res.error).toMatchObject({ code: 'PRECONDITION_FAILED', hayCode: 'INSTALL_FAILED' });
        expect(res.error?.message).toMatch(/exited with code 1; output: [\s\S]*No such file or directory/);
        // it ran, as the plugin uid, in its own folder only
        expect(existsSync(path.join(h.pluginsDir, 'custom', o.id, 'evil-install', 'ran.txt'))).toBe(true);
      }
      await expectNothingEscaped('evil-install', res.error?.message ?? '');
      const stored = h.host.services.registry.get(o.id, 'evil-install');
      if (refused) expect(stored?.installError).toBeNull();
      else for (const s of secrets) expect(stored?.installError ?? '').not.toContain(s);
    },
  );

  it.skipIf(skip)(
    'a package.json lifecycle script runs inside the sandbox with no host env, files or network to the host',
    async () => {
      const steal = [
        "const fs = require('fs');",
        'const tryRead = (p) => { try { return fs.readFileSync(p, "utf8"); } catch (e) { return e.code; } };',
        'const tryWrite = (p) => { try { fs.writeFileSync(p, "pwned"); return "written"; } catch (e) { return e.code; } };',
        `const report = { token: tryRead(${JSON.stringify(path.join(h.dataDir, 'admin-token'))}),`,
        `  key: tryRead(${JSON.stringify(path.join(h.dataDir, 'encryption.key'))}),`,
        `  victim: tryRead(${JSON.stringify(path.join(h.pluginsDir, 'custom', other.id, 'victim', 'manifest.json'))}),`,
        `  outside: tryWrite(${JSON.stringify(path.join(h.pluginsDir, 'pwned.txt'))}),`,
        '  uid: process.getuid(), envKeys: Object.keys(process.env), marker: JSON.stringify(process.env).includes("host-env-secret") };',
        "fs.writeFileSync('report.json', JSON.stringify(report));",
      ].join('\n');
      const res = await uploadAndCall('evil-lifecycle', {}, [
        {
          name: 'package.json',
          data: JSON.stringify({
            name: 'evil-lifecycle',
            version: '1.0.0',
            dependencies: { dep: 'file:./dep' },
            scripts: { preinstall: 'node steal.cjs' },
          }),
        },
        { name: 'dep/package.json', data: JSON.stringify({ name: 'dep', version: '1.0.0' }) },
        { name: 'steal.cjs', data: steal },
      ]);
      if (refused) {
        expectRefused(res);
        expect(existsSync(path.join(h.pluginsDir, 'custom', o.id, 'evil-lifecycle', 'report.json'))).toBe(
          false,
        );
      } else {
        // the install itself works inside the sandbox; the script saw nothing of the host
        expect(res.error, res.raw).toBeUndefined();
        const report = JSON.parse(
          await readFile(path.join(h.pluginsDir, 'custom', o.id, 'evil-lifecycle', 'report.json'), 'utf8'),
        ) as Record<string, unknown>;
        expect(report).toMatchObject({ token: 'ENOENT', key: 'ENOENT', victim: 'ENOENT', marker: false });
        expect(['ENOENT', 'EROFS', 'EACCES']).toContain(report.outside);
        expect(report.uid).not.toBe(0);
        expect(report.envKeys).not.toContain('HAY_HOST_SECRET_MARKER');
      }
      await expectNothingEscaped('evil-lifecycle', res.error?.message ?? '');
    },
  );

  it.skipIf(skip)(
    'a build script reading admin-token and encryption.key gets nothing; the error carries no host path',
    async () => {
      const res = await uploadAndCall('evil-build', {}, [
        {
          name: 'package.json',
          data: JSON.stringify({ name: 'evil-build', version: '1.0.0', scripts: { build: 'sh build.sh' } }),
        },
        { name: 'build.sh', data: attackScript() },
      ]);
      if (refused) expectRefused(res);
      else {
        expect(res.error).toMatchObject({ code: 'PRECONDITION_FAILED', hayCode: 'BUILD_FAILED' });
        expect(res.error?.message).toContain('`npm run build` exited with code 1');
        expect(res.error?.message, res.error?.message).toContain('<host>/admin-token');
      }
      await expectNothingEscaped('evil-build', res.error?.message ?? '');
    },
  );

  it.skipIf(skip)('starting tenant code is sandboxed or refused; a core plugin keeps working', async () => {
    const res = await uploadAndCall('plain', {}, []);
    if (refused) expectRefused(res);
    else expect(toolJson(res.data)).toMatchObject({ echoed: 'x' });
    expect(
      (await trpc(h.host.url, 'plugins.enable', o.adminKey, { pluginId: 'hay-plugin-test' })).data,
    ).toEqual({
      success: true,
    });
    const core = await trpc<{ content: { text: string }[] }>(h.host.url, 'plugins.invokeTool', o.memberKey, {
      pluginId: 'hay-plugin-test',
      toolName: 'echo',
      arguments: { message: 'core works' },
    });
    expect(core.data?.content[0]?.text).toBe('core works');
    const health = (await (await fetch(`${h.host.url}/healthz`)).json()) as {
      sandbox: { tenantCode: string; missing: string[] };
    };
    expect(health.sandbox.tenantCode).toBe(refused ? 'refused' : 'sandboxed');
    if (refused) expect(health.sandbox.missing).toContain('bubblewrap');
  });

  it.skipIf(skip)(
    'filesystem.read of the plugins folder, data dir or an unlisted path is refused at upload',
    async () => {
      const before = await storedState(h);
      for (const p of [
        h.pluginsDir,
        path.join(h.pluginsDir, 'custom', other.id),
        h.dataDir,
        '/etc',
        '/home',
      ]) {
        const res = await uploadZip(
          h.host.url,
          o.adminKey,
          await probeZip({ id: 'reader', permissions: { filesystem: { read: [p] } } }),
        );
        expect(res.status, p).toBe(400);
        expect(res.body.error?.code).toBe('UPLOAD_INVALID');
        expect(res.body.error?.message).toMatch(
          /^manifest\.json permissions\.filesystem\.read: Plugin reader may not read .*(overlaps a protected host directory|operator allows no filesystem\.read paths)/,
        );
      }
      expect(await storedState(h)).toEqual(before);
    },
  );
});

function probeMcp(): Record<string, unknown> {
  return { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node server.mjs' };
}
