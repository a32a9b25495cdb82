import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stickyPercent } from '../../src/lifecycle/versions.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import {
  TOOLKIT_SERVER,
  makePluginsDir,
  startTestHost,
  toolkitPlugin,
  writePluginFiles,
  type TestHost,
} from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/** A toolkit plugin whose `which {ms}` answers its version after `ms`; `mode` breaks it on purpose. */
function versioned(version: string, mode: 'ok' | 'crash' | 'tool-errors' = 'ok') {
  const which = `server.registerTool('which', { inputSchema: { ms: z.number().int().min(0).max(5000) } }, async ({ ms }) => {
  await new Promise((r) => setTimeout(r, ms));
  return { ${mode === 'tool-errors' ? 'isError: true, ' : ''}content: [{ type: 'text', text: ${JSON.stringify(version)} }] };
});
server.registerTool('hold', { inputSchema: { file: z.string() } }, async ({ file }) => {
  while (!existsSync(file)) await new Promise((r) => setTimeout(r, 10));
  return { content: [{ type: 'text', text: ${JSON.stringify(version)} }] };
});
`;
  const server =
    (mode === 'crash' ? "throw new Error('cannot start: missing upstream');\n" : '') +
    TOOLKIT_SERVER.replace('await server.connect(', `${which}await server.connect(`);
  return toolkitPlugin('live', { version }, { 'server.mjs': server });
}

const text = (r: { content: unknown }) => (r.content as { text: string }[])[0]?.text;

describe('versions, hot reload, pins, rollouts', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await startTestHost({
      plugins: { 'core/live': versioned('1.0.0') },
      config: {
        hotReload: 'on',
        watchDebounceMs: 100,
        rateLimitBurst: 100_000,
        rateLimitPerMinute: 1_000_000,
        apiKeyRateLimitPerMinute: 1_000_000,
        analyticsFlushIntervalMs: 200,
      },
    });
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  const readyVersions = async (hay: TestHost['admin']) =>
    (await hay.admin.pluginVersions.query({ pluginId: 'live' })).versions
      .filter((v) => v.state === 'ready')
      .map((v) => v.version);

  it('swaps to a changed plugin with 100 calls in flight: no failures, one version each, then only the new', async () => {
    const org = await h.createOrganization('hot');
    await org.hay.plugins.enable.mutate({ pluginId: 'live', configuration: {} });
    const call = (ms: number) =>
      org.hay.plugins.invokeTool.mutate({ pluginId: 'live', toolName: 'which', arguments: { ms } });
    expect(text(await call(0))).toBe('1.0.0');
    await waitFor(async () => (await readyVersions(h.admin)).includes('1.0.0'), 'version 1.0.0 kept');

    const gate = path.join(h.dataDir, 'release-held-calls');
    const failures: unknown[] = [];
    const track = (p: Promise<{ content: unknown }>, into: string[]) =>
      p.then(
        (r) => void into.push(text(r) ?? ''),
        (e: unknown) => void failures.push(e),
      );
    const early: string[] = [];
    const held = Array.from({ length: 100 }, () =>
      track(
        org.hay.plugins.invokeTool.mutate({ pluginId: 'live', toolName: 'hold', arguments: { file: gate } }),
        early,
      ),
    );
    // all 100 are on the running instance before the files change
    await waitFor(
      () =>
        h.host.services.instances
          .listInstances({ orgId: org.organizationId })
          .some((i) => i.inFlight === 100),
      '100 calls in flight on the instance',
      60_000,
    );
    h.writePlugin('core/live', versioned('2.0.0'));
    await waitFor(
      async () => (await readyVersions(h.admin)).includes('2.0.0'),
      'version 2.0.0 staged',
      60_000,
    );
    // calls arriving now go to the new version; they wait for the old instance to drain
    const late: string[] = [];
    const more = Array.from({ length: 20 }, () => track(call(0), late));
    writeFileSync(gate, '');
    await Promise.all([...held, ...more]);
    expect(failures).toEqual([]);
    expect(early).toEqual(Array(100).fill('1.0.0'));
    expect(late).toEqual(Array(20).fill('2.0.0'));
    const after = await Promise.all(Array.from({ length: 20 }, () => call(0)));
    expect(after.map(text)).toEqual(Array(20).fill('2.0.0'));
    const running = (await org.hay.plugins.instances.query()).filter((i) => i.state === 'running');
    expect(running.map((i) => i.version)).toEqual(['2.0.0']);
  }, 180_000);

  it('a new version that fails to start never replaces the working one; its error is shown', async () => {
    const org = await h.createOrganization('broken');
    await org.hay.plugins.enable.mutate({ pluginId: 'live', configuration: {} });
    const call = () =>
      org.hay.plugins.invokeTool.mutate({ pluginId: 'live', toolName: 'which', arguments: { ms: 0 } });
    expect(text(await call())).toBe('2.0.0');
    h.writePlugin('core/live', versioned('3.0.0', 'crash'));
    const answers: string[] = [];
    await waitFor(async () => {
      answers.push(text(await call()) ?? '');
      const got = await org.hay.plugins.get.query({ pluginId: 'live' });
      return (got.versions as { stageError: unknown } | undefined)?.stageError != null;
    }, 'the failed stage to be recorded');
    expect(new Set(answers)).toEqual(new Set(['2.0.0']));
    const got = await org.hay.plugins.get.query({ pluginId: 'live' });
    expect(got.versions).toMatchObject({
      runningVersion: '2.0.0',
      stageError: { version: '3.0.0', error: expect.stringMatching(/^initialize: /) },
    });
    expect(text(await call())).toBe('2.0.0');

    // an invalid manifest: validation error shown, old version still serving
    h.writePlugin('core/live', { 'manifest.json': '{"id": "live", "version": ' });
    await waitFor(
      async () => (await org.hay.plugins.get.query({ pluginId: 'live' })).status === 'invalid',
      'rescan',
    );
    expect((await org.hay.plugins.get.query({ pluginId: 'live' })).error).toMatch(/manifest/i);
    expect(text(await call())).toBe('2.0.0');
    const stats = await org.hay.plugins.versions.query({ pluginId: 'live' });
    expect(stats.running).toBe('2.0.0');
    expect(stats.versions.filter((v) => v.state === 'failed').map((v) => v.version)).toContain('3.0.0');
    // repaired: back to a good version
    h.writePlugin('core/live', versioned('4.0.0'));
    await waitFor(async () => text(await call()) === '4.0.0', 'the repaired version to serve');
  });

  it('two organizations on two versions side by side; pin, rollback for all, unpin', async () => {
    const a = await h.createOrganization('pinned');
    const b = await h.createOrganization('latest');
    for (const o of [a, b]) await o.hay.plugins.enable.mutate({ pluginId: 'live', configuration: {} });
    const call = (o: typeof a) =>
      o.hay.plugins.invokeTool
        .mutate({ pluginId: 'live', toolName: 'which', arguments: { ms: 0 } })
        .then(text);
    await expect(
      a.hay.plugins.pinVersion.mutate({ pluginId: 'live', version: '9.9.9' }),
    ).rejects.toMatchObject({
      data: { code: 'NOT_FOUND', hayCode: 'VERSION_NOT_FOUND' },
      message: expect.stringContaining('plugin live has no kept version 9.9.9; kept: '),
    });
    expect(await a.hay.plugins.pinVersion.mutate({ pluginId: 'live', version: '1.0.0' })).toMatchObject({
      version: '1.0.0',
    });
    const [va, vb] = await Promise.all([call(a), call(b)]);
    expect([va, vb]).toEqual(['1.0.0', '4.0.0']);
    const running = (await h.host.services.instances.listInstances())
      .filter((i) => i.state === 'running' && [a.organizationId, b.organizationId].includes(i.orgId))
      .map((i) => `${i.orgId === a.organizationId ? 'a' : 'b'}:${i.version}`)
      .sort();
    expect(running).toEqual(['a:1.0.0', 'b:4.0.0']);

    await h.admin.admin.rollbackVersion.mutate({ pluginId: 'live', version: '2.0.0' });
    expect([await call(a), await call(b)]).toEqual(['2.0.0', '2.0.0']);
    await h.admin.admin.unpinVersion.mutate({ pluginId: 'live' });
    expect([await call(a), await call(b)]).toEqual(['4.0.0', '4.0.0']);
    const audit = await h.admin.admin.auditLog.query({ action: 'plugin.pin' });
    expect(audit.entries.length).toBeGreaterThanOrEqual(2);
  });

  it('canary: sticky arm, per-version numbers, automatic rollback when the canary fails', async () => {
    // the failing canary becomes a kept version; everyone stays on 4.0.0 by the operator's pin
    await h.admin.admin.rollbackVersion.mutate({ pluginId: 'live', version: '4.0.0' });
    h.writePlugin('core/live', versioned('5.0.0', 'tool-errors'));
    await waitFor(async () => (await readyVersions(h.admin)).includes('5.0.0'), 'version 5.0.0 kept');
    const org = await h.createOrganization('canary');
    await org.hay.plugins.enable.mutate({ pluginId: 'live', configuration: {} });
    const call = () =>
      org.hay.plugins.invokeTool
        .mutate({ pluginId: 'live', toolName: 'which', arguments: { ms: 0 } })
        .then(text);
    expect(await call()).toBe('4.0.0');
    const r = await h.admin.admin.setRollout.mutate({
      pluginId: 'live',
      version: '5.0.0',
      percent: 100,
      maxErrorRate: 0.5,
      minCalls: 5,
      windowMinutes: 10,
    });
    expect(r).toMatchObject({ state: 'active', percent: 100 });
    const seen: string[] = [];
    await waitFor(async () => {
      seen.push((await call()) ?? '');
      const view = await h.admin.admin.rollout.query({ pluginId: 'live' });
      return view.rollout === null;
    }, 'the automatic rollback');
    expect(seen).toContain('5.0.0');
    expect(await call()).toBe('4.0.0');
    const rollouts = await h.admin.admin.auditLog.query({ action: 'rollout.rollback' });
    expect(rollouts.entries[0]?.details).toMatchObject({
      reason: expect.stringMatching(/error rate 100\.0%/),
    });
    const view = await h.admin.admin.rollout.query({ pluginId: 'live' });
    const arm = view.arms.find((a) => a.key === '5.0.0');
    expect(arm?.errors.tool).toBeGreaterThanOrEqual(5);

    // adjust, then promote: everyone runs the promoted version
    await h.admin.admin.setRollout.mutate({ pluginId: 'live', version: '1.0.0', percent: 10 });
    await h.admin.admin.setRollout.mutate({ pluginId: 'live', version: '1.0.0', percent: 0 });
    expect(await call()).toBe('4.0.0');
    await h.admin.admin.promoteRollout.mutate({ pluginId: 'live' });
    expect(await call()).toBe('1.0.0');
    await expect(h.admin.admin.abortRollout.mutate({ pluginId: 'live' })).rejects.toThrow(
      /no active rollout/,
    );
  });
});

describe('canary within an organization by subject', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await startTestHost({
      plugins: { 'core/live': versioned('1.0.0') },
      config: {
        hotReload: 'off',
        analyticsFlushIntervalMs: 200,
        rateLimitBurst: 100_000,
        rateLimitPerMinute: 1_000_000,
        apiKeyRateLimitPerMinute: 1_000_000,
      },
    });
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('runs both versions side by side in one org, sticky per subject; adjust, promote, abort; audited', async () => {
    const org = await h.createOrganization('subjects');
    const other = await h.createOrganization('bystander');
    for (const o of [org, other]) await o.hay.plugins.enable.mutate({ pluginId: 'live', configuration: {} });
    const call = (o: typeof org, subjectId?: string) =>
      o.hay.plugins.invokeTool
        .mutate({
          pluginId: 'live',
          toolName: 'which',
          arguments: { ms: 0 },
          ...(subjectId !== undefined ? { subjectId } : {}),
        })
        .then(text);
    expect(await call(org)).toBe('1.0.0');
    const kept = async () =>
      (await org.hay.plugins.versions.query({ pluginId: 'live' })).versions.map((v) => v.version);
    await waitFor(async () => (await kept()).includes('1.0.0'), 'v1 kept');
    h.writePlugin('core/live', versioned('2.0.0'));
    await h.admin.admin.rescanPlugins.mutate();
    await waitFor(async () => (await kept()).includes('2.0.0'), 'v2 kept');
    // everyone on 1.0.0; 2.0.0 is the canary for 30 % of org's subjects
    await h.admin.admin.rollbackVersion.mutate({ pluginId: 'live', version: '1.0.0' });
    await expect(
      h.admin.admin.setRollout.mutate({ pluginId: 'live', version: '2.0.0', percent: 5, scope: 'subjects' }),
    ).rejects.toThrow('a rollout over subjects needs organizationId');
    const r = await h.admin.admin.setRollout.mutate({
      pluginId: 'live',
      version: '2.0.0',
      percent: 30,
      scope: 'subjects',
      organizationId: org.organizationId,
    });
    expect(r).toMatchObject({ state: 'active', scope: 'subjects', organizationId: org.organizationId });

    const subjects = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const expected = (p: number, s: string) => (stickyPercent(r.id, s) < p ? '2.0.0' : '1.0.0');
    const failures: unknown[] = [];
    const answers = new Map<string, string[]>();
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < subjects.length; i += 20)
        await Promise.all(
          subjects.slice(i, i + 20).map((s) =>
            call(org, s).then(
              (v) => answers.set(s, [...(answers.get(s) ?? []), v ?? '']),
              (e: unknown) => failures.push(e),
            ),
          ),
        );
    expect(failures).toEqual([]);
    for (const s of subjects) expect(answers.get(s)).toEqual([expected(30, s), expected(30, s)]);
    const inArm = subjects.filter((s) => expected(30, s) === '2.0.0').length;
    expect(Math.abs(inArm / subjects.length - 0.3)).toBeLessThan(0.1);
    // callers without a subject, and other organizations' subjects, stay on the control version
    expect(await call(org)).toBe('1.0.0');
    expect(
      await call(
        other,
        subjects.find((s) => expected(30, s) === '2.0.0'),
      ),
    ).toBe('1.0.0');
    // both versions ran at once for the one organization
    const running = h.host.services.instances
      .listInstances({ orgId: org.organizationId })
      .filter((i) => i.state === 'running')
      .map((i) => i.version)
      .sort();
    expect(running).toEqual(['1.0.0', '2.0.0']);
    // per-version numbers of the two arms, within the organization (v1: the first call, both rounds, and
    // the call without a subject)
    await waitFor(async () => {
      const view = await h.admin.admin.rollout.query({ pluginId: 'live' });
      const calls = (v: string) => view.arms.find((a) => a.key === v)?.calls ?? 0;
      return calls('2.0.0') === inArm * 2 && calls('1.0.0') === (subjects.length - inArm) * 2 + 2;
    }, 'per-version numbers of both arms');

    // adjust: raising the percent keeps everyone already in the arm
    await h.admin.admin.setRollout.mutate({
      pluginId: 'live',
      version: '2.0.0',
      percent: 60,
      scope: 'subjects',
      organizationId: org.organizationId,
    });
    for (const s of subjects.slice(0, 40)) expect(await call(org, s)).toBe(expected(60, s));
    // promote: the organization moves to 2.0.0, the others stay
    await h.admin.admin.promoteRollout.mutate({ pluginId: 'live' });
    expect(await call(org, 'user-0')).toBe('2.0.0');
    expect(await call(org)).toBe('2.0.0');
    expect(await call(other)).toBe('1.0.0');
    // abort: a new subject rollout for the bystander, then everyone back where they were
    await h.admin.admin.setRollout.mutate({
      pluginId: 'live',
      version: '2.0.0',
      percent: 100,
      scope: 'subjects',
      organizationId: other.organizationId,
    });
    expect(await call(other, 'someone')).toBe('2.0.0');
    await h.admin.admin.abortRollout.mutate({ pluginId: 'live' });
    expect(await call(other, 'someone')).toBe('1.0.0');
    for (const action of ['rollout.set', 'rollout.promote', 'rollout.abort']) {
      const rows = await h.admin.admin.auditLog.query({ action });
      expect(rows.entries.length).toBeGreaterThan(0);
    }
    const sets = await h.admin.admin.auditLog.query({ action: 'rollout.set' });
    expect(sets.entries.some((e) => e.organizationId === org.organizationId)).toBe(true);
  });
});

describe('canary stickiness', () => {
  it('puts P% of many org ids in the arm, the same ones every time', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `org-${i}-${(i * 7919) % 10007}`);
    for (const p of [5, 25, 50]) {
      const inArm = ids.filter((id) => stickyPercent('rollout-1', id) < p);
      expect(Math.abs((inArm.length / ids.length) * 100 - p)).toBeLessThan(1.5);
      expect(ids.filter((id) => stickyPercent('rollout-1', id) < p)).toEqual(inArm);
    }
    // raising P keeps everyone already in the arm
    const at10 = new Set(ids.filter((id) => stickyPercent('r', id) < 10));
    const at20 = new Set(ids.filter((id) => stickyPercent('r', id) < 20));
    expect([...at10].every((id) => at20.has(id))).toBe(true);
  });
});

describe('two host nodes on one PostgreSQL database', () => {
  const hosts: TestHost[] = [];
  let db: TestDatabase | undefined;
  let pluginsDir = '';
  afterAll(async () => {
    for (const h of hosts) await h.close();
    await db?.dispose();
    if (pluginsDir) rmSync(pluginsDir, { recursive: true, force: true });
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('share versions, pins and analytics; each node keeps its own copies', async () => {
    db = await createTestDatabase('postgres');
    pluginsDir = makePluginsDir([], { 'core/live': versioned('1.0.0') });
    const config = {
      pluginsDir,
      hotReload: 'off' as const,
      analyticsFlushIntervalMs: 200,
      // nodes of one deployment share the encryption key (secrets and the JWT signing key are in the DB)
      encryptionKey: 'a'.repeat(64),
      // the test polls until both nodes agree; the per-(org, plugin) limit is not what it tests
      rateLimitPerMinute: 100_000,
      rateLimitBurst: 10_000,
    };
    const a = await startTestHost({ databaseUrl: db.databaseUrl, config });
    hosts.push(a);
    const b = await startTestHost({
      databaseUrl: db.databaseUrl,
      config: { ...config, adminToken: a.adminToken },
    });
    hosts.push(b);
    const org = await a.createOrganization('shared');
    await org.hay.plugins.enable.mutate({ pluginId: 'live', configuration: {} });
    const via = (h: TestHost) =>
      h
        .client(org.apiKey)
        .plugins.invokeTool.mutate({ pluginId: 'live', toolName: 'which', arguments: { ms: 0 } })
        .then(text);
    expect([await via(a), await via(b)]).toEqual(['1.0.0', '1.0.0']);
    await waitFor(
      async () => (await org.hay.plugins.versions.query({ pluginId: 'live' })).versions.length === 1,
      'v1 kept',
    );

    writePluginFiles(path.join(pluginsDir, 'core', 'live'), versioned('2.0.0'));
    await a.admin.admin.rescanPlugins.mutate();
    expect(await via(a)).toBe('2.0.0');
    // node b saw no change event (node a's scan updated the shared row); its scan stages its own copy
    await b.admin.admin.rescanPlugins.mutate();
    expect(await via(b)).toBe('2.0.0');

    // a pin made on node a routes calls on node b (after b's refresh)
    await a.client(org.apiKey).plugins.pinVersion.mutate({ pluginId: 'live', version: '1.0.0' });
    expect(await via(a)).toBe('1.0.0');
    await waitFor(async () => (await via(b)) === '1.0.0', 'node b to follow the pin', 15_000);

    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    await waitFor(async () => {
      const rows = await b.admin.admin.analytics.query({ from, to, groupBy: 'version' });
      const calls = rows.reduce((n, r) => n + r.calls, 0);
      return calls >= 6;
    }, 'calls from both nodes in the shared rollups');
  });
});

describe('a kept version reaches a node that never had its files (archives in the database)', () => {
  const hosts: TestHost[] = [];
  const dirs: string[] = [];
  let db: TestDatabase | undefined;
  afterAll(async () => {
    for (const h of hosts) await h.close();
    await db?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('node b, started after v1 was replaced, serves a pin to v1 from the archive node a stored', async () => {
    db = await createTestDatabase('postgres');
    const dirA = makePluginsDir([], { 'core/live': versioned('1.0.0') });
    dirs.push(dirA);
    const config = {
      hotReload: 'off' as const,
      encryptionKey: 'c'.repeat(64),
      rateLimitPerMinute: 100_000,
      rateLimitBurst: 10_000,
      // the test changes it to 0 to show the gap; default: archives on
      ...(process.env.HAY_TEST_ARCHIVES === 'off' ? { versionArchiveMaxBytes: 0 } : {}),
    };
    const a = await startTestHost({ databaseUrl: db.databaseUrl, config: { ...config, pluginsDir: dirA } });
    hosts.push(a);
    const org = await a.createOrganization('archives');
    await org.hay.plugins.enable.mutate({ pluginId: 'live', configuration: {} });
    const via = (h: TestHost) =>
      h
        .client(org.apiKey)
        .plugins.invokeTool.mutate({ pluginId: 'live', toolName: 'which', arguments: { ms: 0 } })
        .then(text);
    expect(await via(a)).toBe('1.0.0');
    const ready = async (h: TestHost) =>
      (await h.admin.admin.pluginVersions.query({ pluginId: 'live' })).versions
        .filter((v) => v.state === 'ready')
        .map((v) => v.version)
        .sort();
    await waitFor(async () => (await ready(a)).includes('1.0.0'), 'v1 kept on node a');
    writePluginFiles(path.join(dirA, 'core', 'live'), versioned('2.0.0'));
    await a.admin.admin.rescanPlugins.mutate();
    expect(await via(a)).toBe('2.0.0');

    // node b has its own data dir and a plugins folder that only ever held v2
    const dirB = makePluginsDir([], { 'core/live': versioned('2.0.0') });
    dirs.push(dirB);
    const b = await startTestHost({
      databaseUrl: db.databaseUrl,
      config: { ...config, pluginsDir: dirB, adminToken: a.adminToken },
    });
    hosts.push(b);
    expect(await via(b)).toBe('2.0.0');

    await org.hay.plugins.pinVersion.mutate({ pluginId: 'live', version: '1.0.0' });
    expect(await via(a)).toBe('1.0.0');
    await waitFor(async () => (await via(b)) === '1.0.0', 'node b to serve the pinned v1', 20_000);
    // the copy node b runs is its own, under its data dir, with the same checksum
    const v1 = (await b.admin.admin.pluginVersions.query({ pluginId: 'live' })).versions.find(
      (v) => v.version === '1.0.0',
    );
    expect(v1).toBeDefined();
    expect(existsSync(path.join(b.dataDir, 'plugin-versions'))).toBe(true);
  });
});
