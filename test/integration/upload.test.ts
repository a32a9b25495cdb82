import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
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
import { buildZip } from '../helpers/zip-writer.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

let t: TestHost;
let org: Awaited<ReturnType<typeof createOrg>>;
let url: string;

beforeAll(async () => {
  // about uploads, not isolation (security.test.ts): uploaded plugins run unsandboxed by explicit opt-out
  t = await startTestHost({ sandbox: 'off', allowUnsandboxedTenantCode: true, uploadMaxBytes: 256 * 1024 });
  url = t.host.url;
  org = await createOrg(t, 'uploader');
});

afterAll(async () => {
  await t?.dispose();
  await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
  expect(descendantPids()).toEqual([]);
});

const customDir = () => path.join(t.pluginsDir, 'custom', org.id);

describe('POST /v1/plugins/upload', () => {
  it('installs an uploaded plugin for the organization, which can then enable and invoke it', async () => {
    const res = await uploadZip(url, org.adminKey, await probeZip({ id: 'my-probe', version: '1.0.0' }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ pluginId: 'my-probe', version: '1.0.0' });
    expect(existsSync(path.join(customDir(), 'my-probe', 'manifest.json'))).toBe(true);
    expect((await listTree(customDir())).filter((f) => f.startsWith('_staging'))).toEqual([]);

    const row = (await storedState(t)).registry.find(
      (r) => (r as { pluginId: string }).pluginId === 'my-probe',
    ) as {
      organizationId: string;
      status: string;
      zipUploadId: string | null;
      sourceType: string;
    };
    expect(row).toMatchObject({ organizationId: org.id, status: 'ok', sourceType: 'custom' });
    expect(row.zipUploadId).toMatch(/^[0-9a-f-]{36}$/);

    expect((await trpc(url, 'plugins.enable', org.adminKey, { pluginId: 'my-probe' })).data).toEqual({
      success: true,
    });
    const call = await trpc(url, 'plugins.invokeTool', org.memberKey, {
      pluginId: 'my-probe',
      toolName: 'echo',
      arguments: { message: 'hi', count: 2 },
    });
    expect(toolJson(call.data)).toMatchObject({ echoed: 'hihi' });

    const audit = (await auditRows(t)).filter((r) => r.action === 'plugin.upload' && r.outcome === 'ok');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      organizationId: org.id,
      pluginId: 'my-probe',
      actor: expect.stringMatching(/^key:/),
    });
    expect(audit[0]?.details).toMatchObject({ version: '1.0.0', uploadId: row.zipUploadId, replaced: false });
  });

  it('replacing keeps the previous version, rollback swaps it back (and forward again)', async () => {
    const res = await uploadZip(url, org.adminKey, await probeZip({ id: 'my-probe', version: '1.1.0' }));
    expect(res.body).toEqual({ pluginId: 'my-probe', version: '1.1.0' });
    const version = async (dir: string) =>
      (JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { version: string }).version;
    expect(await version(path.join(customDir(), 'my-probe'))).toBe('1.1.0');
    expect(await version(path.join(customDir(), '_previous', 'my-probe'))).toBe('1.0.0');
    expect(
      (await trpc<{ version: string }>(url, 'plugins.get', org.memberKey, { pluginId: 'my-probe' }, 'query'))
        .data?.version,
    ).toBe('1.1.0');

    const back = await trpc(url, 'plugins.rollback', org.adminKey, { pluginId: 'my-probe' });
    expect(back.data).toEqual({ pluginId: 'my-probe', version: '1.0.0' });
    expect(await version(path.join(customDir(), 'my-probe'))).toBe('1.0.0');
    expect(await version(path.join(customDir(), '_previous', 'my-probe'))).toBe('1.1.0');
    expect(
      (await trpc<{ version: string }>(url, 'plugins.get', org.memberKey, { pluginId: 'my-probe' }, 'query'))
        .data?.version,
    ).toBe('1.0.0');
    // the running instance picked up the rolled-back files
    const call = await trpc(url, 'plugins.invokeTool', org.memberKey, {
      pluginId: 'my-probe',
      toolName: 'echo',
      arguments: { message: 'x', count: 1 },
    });
    expect(call.error).toBeUndefined();
    expect(toolJson(call.data)).toMatchObject({ echoed: 'x' });

    const forward = await trpc(url, 'plugins.rollback', org.adminKey, { pluginId: 'my-probe' });
    expect(forward.data).toEqual({ pluginId: 'my-probe', version: '1.1.0' });
    const rows = (await auditRows(t)).filter((r) => r.action === 'plugin.rollback');
    expect(rows.map((r) => r.details)).toEqual([{ version: '1.0.0' }, { version: '1.1.0' }]);
  });

  it('members, the admin token and unauthenticated callers cannot upload; nothing is stored', async () => {
    const before = await storedState(t);
    const zip = await probeZip({ id: 'not-allowed' });
    const member = await uploadZip(url, org.memberKey, zip);
    expect(member.status).toBe(403);
    expect(member.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'uploading a plugin needs an organization API key with the admin role',
    });
    const admin = await uploadZip(url, t.host.adminToken, zip);
    expect(admin.status).toBe(403);
    expect(admin.body.error?.message).toMatch(/uploads belong to an organization/);
    const none = await uploadZip(url, undefined, zip);
    expect(none.status).toBe(401);
    expect(none.body.error?.code).toBe('UNAUTHORIZED');
    const garbage = await uploadZip(url, 'hay_garbage_key', zip);
    expect(garbage.status).toBe(401);
    expect(garbage.body.error?.message).toBe('invalid or revoked API key');
    expect(await storedState(t)).toEqual(before);
    const failed = (await auditRows(t)).filter(
      (r) => r.action === 'auth.failed' && (r.details as { route?: string }).route === 'plugins.upload',
    );
    expect(failed.length).toBe(2);
  });

  it('refuses malformed requests and archives with a clear 4xx, leaving nothing behind', async () => {
    const before = await storedState(t);
    const wrongField = await uploadZip(url, org.adminKey, await probeZip({ id: 'wrong-field' }), 'archive');
    expect(wrongField.status).toBe(400);
    expect(wrongField.body.error).toMatchObject({
      code: 'UPLOAD_INVALID',
      message: expect.stringContaining('"archive"'),
    });

    const notMultipart = await fetch(`${url}/v1/plugins/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${org.adminKey}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(notMultipart.status).toBe(400);
    expect(((await notMultipart.json()) as { error: { code: string } }).error.code).toBe('UPLOAD_INVALID');

    const noManifest = await uploadZip(url, org.adminKey, buildZip([{ name: 'server.mjs', data: 'x' }]));
    expect(noManifest.status).toBe(400);
    expect(noManifest.body.error?.message).toMatch(/no manifest\.json/);

    const badManifest = await uploadZip(url, org.adminKey, await probeZip({ id: 'Bad_Id' }));
    expect(badManifest.status).toBe(400);
    expect(badManifest.body.error).toMatchObject({
      code: 'MANIFEST_INVALID',
      message: expect.stringContaining('/id'),
    });

    const notZip = await uploadZip(url, org.adminKey, Buffer.from('this is not a zip file at all'));
    expect(notZip.status).toBe(400);
    expect(notZip.body.error?.message).toMatch(/not a valid zip/);

    const tooBig = await uploadZip(
      url,
      org.adminKey,
      buildZip([{ name: 'blob.bin', data: Buffer.alloc(300 * 1024, 7), method: 'store' }]),
    );
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error?.message).toMatch(/HAY_UPLOAD_MAX_BYTES/);

    expect(await storedState(t)).toEqual(before);
    expect(await listTree(path.join(t.dataDir, 'uploads'))).toEqual([]);
  });

  it('a manifest id of a core plugin is refused with 409 before anything is written', async () => {
    const before = await storedState(t);
    const res = await uploadZip(url, org.adminKey, await probeZip({ id: 'email-notifier' }));
    expect(res.status).toBe(409);
    expect(res.body.error).toEqual({
      code: 'CONFLICT',
      message: 'plugin id "email-notifier" belongs to a core plugin; choose another id in manifest.json',
    });
    expect(await storedState(t)).toEqual(before);
  });

  it('rollback without a previous version is 409; core plugins cannot be uninstalled', async () => {
    await uploadZip(url, org.adminKey, await probeZip({ id: 'single-version' }));
    const before = await storedState(t);
    const rb = await trpc(url, 'plugins.rollback', org.adminKey, { pluginId: 'single-version' });
    expect(rb.error).toMatchObject({
      code: 'CONFLICT',
      message: 'plugin single-version has no previous version to roll back to',
    });
    const core = await trpc(url, 'plugins.uninstall', org.adminKey, { pluginId: 'email-notifier' });
    expect(core.error).toMatchObject({ code: 'FORBIDDEN' });
    const member = await trpc(url, 'plugins.uninstall', org.memberKey, { pluginId: 'single-version' });
    expect(member.error?.code).toBe('FORBIDDEN');
    expect(await storedState(t)).toEqual(before);
  });

  it('uninstall stops instances, removes the files, marks the row missing and keeps the audit trail', async () => {
    const warm = await trpc(url, 'plugins.invokeTool', org.memberKey, {
      pluginId: 'my-probe',
      toolName: 'echo',
      arguments: { message: 'w', count: 1 },
    });
    expect(toolJson(warm.data)).toMatchObject({ echoed: 'w' });
    expect(
      t.host.services.instances
        .listInstances({ orgId: org.id })
        .some((i) => i.pluginId === 'my-probe' && i.state === 'running'),
    ).toBe(true);
    const res = await trpc(url, 'plugins.uninstall', org.adminKey, { pluginId: 'my-probe' });
    expect(res.data).toEqual({ success: true });
    expect(existsSync(path.join(customDir(), 'my-probe'))).toBe(false);
    expect(existsSync(path.join(customDir(), '_previous', 'my-probe'))).toBe(false);
    expect(
      t.host.services.instances
        .listInstances({ orgId: org.id })
        .filter((i) => i.pluginId === 'my-probe' && i.state === 'running'),
    ).toEqual([]);
    const got = await trpc<{ status: string }>(
      url,
      'plugins.get',
      org.memberKey,
      { pluginId: 'my-probe' },
      'query',
    );
    expect(got.data?.status).toBe('missing');
    const call = await trpc(url, 'plugins.invokeTool', org.memberKey, {
      pluginId: 'my-probe',
      toolName: 'echo',
      arguments: { message: 'x', count: 1 },
    });
    expect(call.error).toMatchObject({ code: 'PRECONDITION_FAILED', hayCode: 'PLUGIN_NOT_READY' });
    const actions = (await auditRows(t)).filter((r) => r.pluginId === 'my-probe').map((r) => r.action);
    expect(actions).toContain('plugin.upload');
    expect(actions).toContain('tool.invoke');
    expect(actions.at(-1)).toBe('plugin.uninstall');

    // uploading again brings the same row back
    const again = await uploadZip(url, org.adminKey, await probeZip({ id: 'my-probe', version: '2.0.0' }));
    expect(again.body).toEqual({ pluginId: 'my-probe', version: '2.0.0' });
    const after = await trpc<{ status: string; version: string }>(
      url,
      'plugins.get',
      org.memberKey,
      { pluginId: 'my-probe' },
      'query',
    );
    expect(after.data).toMatchObject({ status: 'ok', version: '2.0.0' });
  });
});

describe('crash-safe rollback (repaired at boot)', () => {
  const version = async (dir: string) =>
    (JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { version: string }).version;
  const current = () => path.join(customDir(), 'crashy');
  const previous = () => path.join(customDir(), '_previous', 'crashy');
  const leftovers = async () =>
    (await readdir(customDir())).filter((e) => e.startsWith('_swap-') || e.startsWith('_staging-'));
  const getVersion = async () =>
    (
      await trpc<{ status: string; version: string }>(
        t.host.url,
        'plugins.get',
        org.memberKey,
        { pluginId: 'crashy' },
        'query',
      )
    ).data;

  beforeAll(async () => {
    for (const v of ['1.0.0', '1.1.0']) {
      const res = await uploadZip(url, org.adminKey, await probeZip({ id: 'crashy', version: v }));
      expect(res.status, res.raw).toBe(200);
    }
  });

  it('a crash after the current version moved to _swap-* puts it back', async () => {
    await rename(current(), path.join(customDir(), `_swap-crashy-${randomUUID()}`));
    await mkdir(path.join(customDir(), `_staging-${randomUUID()}`));
    await t.restart();
    expect(await leftovers()).toEqual([]);
    expect(await version(current())).toBe('1.1.0');
    expect(await version(previous())).toBe('1.0.0');
    expect(await getVersion()).toMatchObject({ status: 'ok', version: '1.1.0' });
  });

  it('a crash after the previous version moved into place completes the rollback (old swap names too)', async () => {
    // the pre-fix swap name carried no plugin id: the manifest names it
    await rename(current(), path.join(customDir(), `_swap-${randomUUID()}`));
    await rename(previous(), current());
    await t.restart();
    expect(await leftovers()).toEqual([]);
    expect(await version(current())).toBe('1.0.0');
    expect(await version(previous())).toBe('1.1.0');
    expect(await getVersion()).toMatchObject({ status: 'ok', version: '1.0.0' });
    // and the next rollback works from the repaired state
    const forward = await trpc(t.host.url, 'plugins.rollback', org.adminKey, { pluginId: 'crashy' });
    expect(forward.data).toEqual({ pluginId: 'crashy', version: '1.1.0' });
  });

  it('a crash inside an upload (current moved to _previous, new one not yet in place) restores the current one', async () => {
    await rm(previous(), { recursive: true });
    await rename(current(), previous());
    await t.restart();
    expect(await version(current())).toBe('1.1.0');
    expect(existsSync(previous())).toBe(false);
    expect(await getVersion()).toMatchObject({ status: 'ok', version: '1.1.0' });
  });

  it('rollback never follows a manifest.json the tenant turned into a symlink to a host file', async () => {
    const res0 = await uploadZip(
      t.host.url,
      org.adminKey,
      await probeZip({ id: 'crashy', version: '1.2.0' }),
    );
    expect(res0.status, res0.raw).toBe(200);
    const prev = path.join(customDir(), '_previous', 'crashy', 'manifest.json');
    await rm(prev);
    await symlink(path.join(t.dataDir, 'encryption.key'), prev);
    const key = (await readFile(path.join(t.dataDir, 'encryption.key'), 'utf8')).trim();
    const res = await trpc(t.host.url, 'plugins.rollback', org.adminKey, { pluginId: 'crashy' });
    expect(res.error?.code).toBe('BAD_REQUEST');
    expect(res.error?.message).toMatch(/symbolic link/);
    expect(res.raw).not.toContain(key);
    expect(await version(current())).toBe('1.2.0');
  });
});
