import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  LoggingMessageNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { ASKER_SERVER, legacyMcpClient, modernMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * `/mcp` relaying what is not a tool call, from SDK clients of both eras: a plugin's resources and
 * prompts (listed from the last known lists, read and got through PluginService), its sampling and
 * elicitation requests (answered by a client that declares them, refused with a clear error to the
 * plugin when the client does not), its log notifications, resources/list_changed, and isolation.
 */

let t: TestHost;
let tmp: string;
let orgA: { organizationId: string; apiKey: string; hay: TestHost['admin'] };
let orgB: { organizationId: string; apiKey: string; hay: TestHost['admin'] };
const closers: (() => Promise<unknown>)[] = [];

function track<T extends { close(): Promise<unknown> }>(c: T): T {
  closers.push(() => c.close());
  return c;
}

const textOf = (r: Record<string, unknown>) =>
  ((r.content as { type: string; text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('');

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-gw-relay-'));
  t = await startTestHost({
    plugins: {
      'core/asker': toolkitPlugin('asker', {}, { 'server.mjs': ASKER_SERVER }),
      'core/toolkit': toolkitPlugin('toolkit'),
    },
    config: { callTimeoutMs: 10_000, startTimeoutMs: 10_000 },
  });
  orgA = await t.createOrganization('a');
  orgB = await t.createOrganization('b');
  await orgA.hay.plugins.enable.mutate({ pluginId: 'asker', configuration: {} });
  await orgB.hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
  // the first start stores the plugin's resource and prompt lists (listing never starts a plugin)
  await orgA.hay.plugins.invokeTool.mutate({
    pluginId: 'asker',
    toolName: 'log',
    arguments: { message: 'x' },
  });
});

afterAll(async () => {
  for (const c of closers) await c().catch(() => undefined);
  await t?.close();
  rmSync(tmp, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

describe.each(['legacy', 'modern'] as const)('%s era', (era) => {
  const connect = (key: string, answers = false) =>
    era === 'legacy' ? legacyMcpClient(t.url, key, { answers }) : modernMcpClient(t.url, key, { answers });

  it('lists resources, templates and prompts under hay:// URIs and <pluginId>__ names, and reads them', async () => {
    const client = track(await connect(orgA.apiKey));
    await waitFor(
      async () => (await client.listResources()).resources.length > 0,
      'the stored resource list of the started plugin',
    );
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toContain('hay://asker/note://a/one');
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((r) => r.uriTemplate)).toEqual(['hay://asker/note://b/{id}']);
    const read = await client.readResource({ uri: 'hay://asker/note://a/one' });
    expect(read.contents).toEqual([{ uri: 'hay://asker/note://a/one', text: 'note one' }]);
    const templated = await client.readResource({ uri: 'hay://asker/note://b/42' });
    expect(templated.contents[0]).toMatchObject({ text: 'note b 42' });
    // the plugin's own URI (as in a resource_link of a tool result) still resolves: one plugin lists it
    const own = await client.readResource({ uri: 'note://a/one' });
    expect(own.contents).toEqual([{ uri: 'note://a/one', text: 'note one' }]);
    await expect(client.readResource({ uri: 'note://nowhere' })).rejects.toThrow(/not found/i);

    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(['asker__greet']);
    const prompt = await client.getPrompt({ name: 'asker__greet', arguments: { name: 'Ada' } });
    expect(prompt.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Hello Ada' } }]);
    await expect(client.getPrompt({ name: 'asker__nope', arguments: {} })).rejects.toThrow(/Unknown prompt/);
  });

  it('relays completion/complete for a prompt argument and a template argument, in the plugin’s names', async () => {
    const client = track(await connect(orgA.apiKey));
    const prompt = await client.complete({
      ref: { type: 'ref/prompt', name: 'asker__greet' },
      argument: { name: 'name', value: 'A' },
    });
    expect(prompt.completion.values).toEqual(['Ada', 'Alan']);
    for (const uri of ['hay://asker/note://b/{id}', 'note://b/{id}']) {
      const template = await client.complete({
        ref: { type: 'ref/resource', uri },
        argument: { name: 'id', value: '4' },
      });
      expect(template.completion.values, uri).toEqual(['42']);
    }
    await expect(
      client.complete({
        ref: { type: 'ref/prompt', name: 'asker__nope' },
        argument: { name: 'x', value: '' },
      }),
    ).rejects.toThrow(/Unknown prompt/);
    await expect(
      client.complete({
        ref: { type: 'ref/resource', uri: 'note://nowhere/{x}' },
        argument: { name: 'x', value: '' },
      }),
    ).rejects.toThrow(/Unknown resource template/);
  });

  it('isolates organizations: B lists none of A’s resources or prompts and cannot read them', async () => {
    const b = track(await connect(orgB.apiKey));
    expect((await b.listResources()).resources).toEqual([]);
    expect((await b.listPrompts()).prompts).toEqual([]);
    await expect(b.readResource({ uri: 'hay://asker/note://a/one' })).rejects.toThrow(/not enabled/);
    await expect(b.readResource({ uri: 'note://a/one' })).rejects.toThrow(/not found/i);
    await expect(b.getPrompt({ name: 'asker__greet', arguments: { name: 'x' } })).rejects.toThrow(
      /Unknown prompt/,
    );
    await expect(
      b.complete({
        ref: { type: 'ref/prompt', name: 'asker__greet' },
        argument: { name: 'name', value: 'A' },
      }),
    ).rejects.toThrow(/Unknown prompt/);
    await expect(
      b.complete({
        ref: { type: 'ref/resource', uri: 'hay://asker/note://b/{id}' },
        argument: { name: 'id', value: '' },
      }),
    ).rejects.toThrow(/not enabled/);
  });

  it('forwards the plugin’s sampling and elicitation to a client that answers them', async () => {
    const client = track(await connect(orgA.apiKey, true));
    const sample = await client.callTool({ name: 'asker__sample', arguments: { prompt: `hi ${era}` } });
    expect(textOf(sample)).toBe(`sampled: hi ${era}`);
    const elicit = await client.callTool({ name: 'asker__elicit', arguments: {} });
    expect(textOf(elicit)).toBe('accept {"name":"Ada"}');
  });

  it('gives the plugin a clear error when the client does not support sampling or elicitation', async () => {
    const client = track(await connect(orgA.apiKey));
    const sample = await client.callTool({ name: 'asker__sample', arguments: { prompt: 'x' } });
    expect(textOf(sample)).toMatch(/^error: .*does not support sampling/);
    const elicit = await client.callTool({ name: 'asker__elicit', arguments: {} });
    expect(textOf(elicit)).toMatch(/^error: .*does not support elicitation/);
  });

  it('relays the plugin’s log notifications of a call (at the level the client set)', async () => {
    const client = track(await connect(orgA.apiKey));
    const seen: unknown[] = [];
    let r;
    if ('getProtocolEra' in client) {
      // 2026-07-28: a request asks for log notifications with the logLevel of its envelope
      client.setNotificationHandler('notifications/message', (n) => void seen.push(n.params.data));
      r = await client.callTool({
        name: 'asker__log',
        arguments: { message: `log ${era}` },
        _meta: { 'io.modelcontextprotocol/logLevel': 'info' },
      });
    } else {
      await client.setLoggingLevel('info');
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.push(n.params.data));
      r = await client.callTool({ name: 'asker__log', arguments: { message: `log ${era}` } });
    }
    expect(textOf(r)).toBe('logged');
    await waitFor(() => seen.includes(`log ${era}`), 'the log notification');
  });
});

describe('around the relay', () => {
  it('a plugins.invokeTool caller (no MCP client) makes the plugin’s sampling fail with a clear error', async () => {
    const r = await orgA.hay.plugins.invokeTool.mutate({
      pluginId: 'asker',
      toolName: 'sample',
      arguments: { prompt: 'x' },
    });
    expect(textOf(r)).toMatch(/^error: .*cannot answer sampling\/createMessage/);
  });

  it('a local plugin’s roots/list is answered by the host with its data folder, not forwarded', async () => {
    const client = track(await legacyMcpClient(t.url, orgA.apiKey, { answers: true }));
    const r = await client.callTool({ name: 'asker__roots', arguments: {} });
    expect(JSON.parse(textOf(r))).toEqual([expect.objectContaining({ name: 'data' })]);
  });

  it('reads a URI made from a plugin’s own template unprefixed (listed by no plugin), in both eras', async () => {
    for (const connect of [legacyMcpClient, modernMcpClient]) {
      const client = track(await connect(t.url, orgA.apiKey));
      await waitFor(
        async () => (await client.listResourceTemplates()).resourceTemplates.length > 0,
        'the stored template list of the started plugin',
      );
      const read = await client.readResource({ uri: 'note://b/12' });
      expect(read.contents).toEqual([{ uri: 'note://b/12', text: 'note b 12' }]);
      await expect(client.readResource({ uri: 'note://c/12' })).rejects.toThrow(/not found/i);
      // org B sees none of A's templates
      const b = track(await connect(t.url, orgB.apiKey));
      await expect(b.readResource({ uri: 'note://b/12' })).rejects.toThrow(/not found/i);
    }
  });

  it('announces resources/list_changed when the plugin’s own list changes, and lists the new one', async () => {
    const legacy = track(await legacyMcpClient(t.url, orgA.apiKey));
    const modern = track(await modernMcpClient(t.url, orgA.apiKey));
    let legacyNotes = 0;
    let modernNotes = 0;
    legacy.setNotificationHandler(ResourceListChangedNotificationSchema, () => {
      legacyNotes++;
    });
    modern.setNotificationHandler('notifications/resources/list_changed', () => {
      modernNotes++;
    });
    const subscription = await modern.listen({ resourcesListChanged: true });
    closers.push(() => subscription.close());
    await legacy.callTool({ name: 'asker__add-note', arguments: {} });
    await waitFor(() => legacyNotes >= 1 && modernNotes >= 1, 'resources/list_changed in both eras');
    await waitFor(
      async () => (await modern.listResources()).resources.some((r) => r.uri === 'hay://asker/note://a/two'),
      'the new resource in the list',
    );
  });

  it('relays resources/subscribe to the plugin once and resources/updated to the subscribed session only', async () => {
    const one = track(await legacyMcpClient(t.url, orgA.apiKey));
    const two = track(await legacyMcpClient(t.url, orgA.apiKey));
    const other = track(await legacyMcpClient(t.url, orgA.apiKey));
    const updates = { one: [] as string[], two: [] as string[], other: [] as string[] };
    for (const [name, c] of [
      ['one', one],
      ['two', two],
      ['other', other],
    ] as const)
      c.setNotificationHandler(
        ResourceUpdatedNotificationSchema,
        (n) => void updates[name].push(n.params.uri),
      );
    await one.subscribeResource({ uri: 'hay://asker/note://a/one' });
    await two.subscribeResource({ uri: 'note://a/one' });
    const touch = async () => textOf(await other.callTool({ name: 'asker__touch', arguments: {} }));
    // one plugin-side subscription for the two sessions
    expect(await touch()).toBe('["note://a/one"]');
    await waitFor(() => updates.one.length >= 1 && updates.two.length >= 1, 'resources/updated to both');
    expect(updates.one).toEqual(['hay://asker/note://a/one']);
    expect(updates.two).toEqual(['note://a/one']);
    expect(updates.other).toEqual([]);
    await one.unsubscribeResource({ uri: 'hay://asker/note://a/one' });
    expect(await touch()).toBe('["note://a/one"]');
    await waitFor(() => updates.two.length >= 2, 'the second update to the remaining session');
    expect(updates.one).toHaveLength(1);
    // the last session leaving (DELETE /mcp ends it) drops the plugin's subscription
    await (two.transport as unknown as { terminateSession(): Promise<void> }).terminateSession();
    await waitFor(async () => (await touch()) === '[]', 'the plugin-side unsubscribe');
    await expect(other.subscribeResource({ uri: 'note://nowhere' })).rejects.toThrow(/Unknown resource/);
  });

  it('a key restricted to named tools of a plugin sees none of its resources or prompts', async () => {
    const { apiKey } = await t.admin.admin.createApiKey.mutate({
      organizationId: orgA.organizationId,
      role: 'member',
      restrict: { tools: ['asker/log'] },
    });
    const client = track(await modernMcpClient(t.url, apiKey));
    expect((await client.listResources()).resources).toEqual([]);
    expect((await client.listPrompts()).prompts).toEqual([]);
    await expect(client.readResource({ uri: 'hay://asker/note://a/one' })).rejects.toThrow(/restricted/);
    await expect(
      client.complete({
        ref: { type: 'ref/resource', uri: 'hay://asker/note://b/{id}' },
        argument: { name: 'id', value: '' },
      }),
    ).rejects.toThrow(/restricted/);
    expect((await client.listTools()).tools.map((x) => x.name)).toEqual(['asker__log']);
  });
});

describe('resource subscriptions of a 2025-11-25 session across plugin instances', () => {
  it('are renewed on the new instance after a restart and after a crash', async () => {
    const client = track(await legacyMcpClient(t.url, orgA.apiKey));
    const other = track(await legacyMcpClient(t.url, orgA.apiKey));
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await client.subscribeResource({ uri: 'hay://asker/note://a/one' });
    // `touch` answers the plugin's own subscriptions and notifies each of them
    const touch = async () => textOf(await other.callTool({ name: 'asker__touch', arguments: {} }));
    expect(await touch()).toBe('["note://a/one"]');
    await waitFor(() => updates.length === 1, 'resources/updated from the first instance');
    const pidOf = () =>
      t.host.services.instances
        .listInstances({ orgId: orgA.organizationId })
        .find((i) => i.pluginId === 'asker' && i.state === 'running')?.pid;
    const first = pidOf();

    await orgA.hay.plugins.restartInstance.mutate({ pluginId: 'asker' });
    await waitFor(
      async () => (await touch()) === '["note://a/one"]',
      'the subscription on the restarted instance',
    );
    await waitFor(() => updates.length >= 2, 'resources/updated from the restarted instance');
    const second = pidOf();
    expect(second).toBeDefined();
    expect(second).not.toBe(first);

    process.kill(second as number, 'SIGKILL');
    await waitFor(() => pidOf() !== second, 'the crashed instance to be noticed');
    await waitFor(
      async () => (await touch().catch(() => '')) === '["note://a/one"]',
      'the subscription on the instance started after the crash',
    );
    await waitFor(() => updates.length >= 3, 'resources/updated from the instance after the crash');
    expect(new Set(updates)).toEqual(new Set(['hay://asker/note://a/one']));
  });
});
