import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { legacyMcpClient } from '../helpers/mcp-clients.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Resource subscriptions of `/mcp` sessions and the instances that hold them: a held subscription keeps
 * an instance from the idle sweep, and a shared instance's subscriptions and updates reach every
 * organization holding the URI (or the one the plugin names in `_meta["hay/orgId"]`).
 * Both tests failed before the fix: the sweep stopped the subscribed instance (and a crashed one stayed
 * down), and a shared instance's resources/updated reached no session.
 */
const SUBS_SERVER = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const server = new McpServer({ name: 'subs', version: '1.0.0' }, { capabilities: { resources: { subscribe: true } } });
// a plugin that ignores the organization of a subscribe (one set for the process)
const subscribed = new Set();
const seen = [];
server.server.setRequestHandler(SubscribeRequestSchema, (req) => {
  subscribed.add(req.params.uri);
  seen.push(String(req.params._meta?.['hay/orgId'] ?? 'none'));
  return {};
});
server.server.setRequestHandler(UnsubscribeRequestSchema, (req) => { subscribed.delete(req.params.uri); return {}; });
const text = (t) => ({ content: [{ type: 'text', text: t }] });
server.registerTool('touch', { inputSchema: { forOrg: z.string().optional() } }, async ({ forOrg }) => {
  for (const uri of subscribed)
    await server.server.sendResourceUpdated({ uri, ...(forOrg ? { _meta: { 'hay/orgId': forOrg } } : {}) });
  return text(JSON.stringify([...subscribed]));
});
server.registerTool('seen', {}, async () => text(JSON.stringify(seen)));
server.registerResource('one', 'note://one', { mimeType: 'text/plain' }, async (uri) => ({
  contents: [{ uri: uri.href, text: 'note one' }],
}));
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;

const subsPlugin = (id: string, runtime: Record<string, unknown>) =>
  toolkitPlugin(
    id,
    {
      capabilities: {
        mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node server.mjs' },
      },
      runtime,
    },
    { 'server.mjs': SUBS_SERVER },
  );

type Client = Awaited<ReturnType<typeof legacyMcpClient>>;

let t: TestHost;
let orgA: Awaited<ReturnType<TestHost['createOrganization']>>;
let orgB: Awaited<ReturnType<TestHost['createOrganization']>>;
const clients: Client[] = [];

async function session(apiKey: string, updates: string[]): Promise<Client> {
  const c = await legacyMcpClient(t.url, apiKey);
  clients.push(c);
  c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
  return c;
}

/** An idle sweep once the clock has moved past the last activity (the idle timeout of `subs` is 0 ms). */
async function sweep(): Promise<void> {
  const from = Date.now();
  await waitFor(() => Date.now() > from + 1, 'the clock to move on');
  await t.host.services.instances.cleanupInactiveInstances();
}

const textOf = (r: Awaited<ReturnType<Client['callTool']>>): string =>
  (r.content as { type: string; text: string }[])[0]?.text ?? '';

beforeAll(async () => {
  t = await startTestHost({
    corePlugins: [],
    plugins: {
      // idle at once: any sweep stops it unless something holds it
      'core/subs': subsPlugin('subs', { idleTimeoutMs: 0 }),
      'core/sharedsubs': subsPlugin('sharedsubs', { shared: true }),
    },
    // sweeps only when the test asks for one
    config: { callTimeoutMs: 10_000, startTimeoutMs: 10_000, idleSweepIntervalMs: 600_000 },
  });
  orgA = await t.createOrganization('a');
  orgB = await t.createOrganization('b');
  for (const org of [orgA, orgB]) {
    await org.hay.plugins.enable.mutate({ pluginId: 'subs', configuration: {} });
    await org.hay.plugins.enable.mutate({ pluginId: 'sharedsubs', configuration: {} });
  }
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

describe('a held resource subscription and the idle sweep', () => {
  it('keeps the subscribed instance running past its idle timeout; it is stopped once unsubscribed', async () => {
    const updates: string[] = [];
    const client = await session(orgA.apiKey, updates);
    await client.subscribeResource({ uri: 'hay://subs/note://one' });
    const running = () =>
      t.host.services.instances
        .listInstances({ orgId: orgA.organizationId })
        .find((i) => i.pluginId === 'subs' && i.state === 'running')?.pid;
    const pid = running();
    expect(pid).toBeDefined();
    await sweep();
    expect(running()).toBe(pid);
    // the update still comes from the same process, without a call in between having restarted it
    const other = await session(orgA.apiKey, []);
    expect(textOf(await other.callTool({ name: 'subs__touch', arguments: {} }))).toBe('["note://one"]');
    await waitFor(() => updates.length === 1, 'resources/updated');
    expect(running()).toBe(pid);

    // a crash: the held subscription starts the instance again and is renewed on it, with no call
    process.kill(pid as number, 'SIGKILL');
    await waitFor(() => (running() ?? pid) !== pid, 'a new instance after the crash');
    const seen = async () => textOf(await other.callTool({ name: 'subs__seen', arguments: {} }));
    await waitFor(async () => (await seen()) === '["none"]', 'the subscription renewed on the new instance');
    expect(textOf(await other.callTool({ name: 'subs__touch', arguments: {} }))).toBe('["note://one"]');
    await waitFor(() => updates.length === 2, 'resources/updated from the new instance');

    await client.unsubscribeResource({ uri: 'hay://subs/note://one' });
    await sweep();
    expect(running()).toBeUndefined();
  });
});

describe('resource subscriptions on a shared instance', () => {
  it("reach every organization holding the URI, or the one named in _meta; one organization leaving keeps the other's", async () => {
    const a: string[] = [];
    const b: string[] = [];
    const sa = await session(orgA.apiKey, a);
    const sb = await session(orgB.apiKey, b);
    await sa.subscribeResource({ uri: 'hay://sharedsubs/note://one' });
    await sb.subscribeResource({ uri: 'hay://sharedsubs/note://one' });
    const pids = t.host.services.instances
      .listInstances({})
      .filter((i) => i.pluginId === 'sharedsubs' && i.state === 'running');
    expect(pids).toHaveLength(1);
    // each organization's subscribe names it
    expect(JSON.parse(textOf(await sa.callTool({ name: 'sharedsubs__seen', arguments: {} })))).toEqual([
      orgA.organizationId,
      orgB.organizationId,
    ]);

    await sa.callTool({ name: 'sharedsubs__touch', arguments: {} });
    await waitFor(() => a.length === 1 && b.length === 1, 'resources/updated to both organizations');
    await sa.callTool({ name: 'sharedsubs__touch', arguments: { forOrg: orgB.organizationId } });
    await waitFor(() => b.length === 2, 'the update addressed to organization B');
    expect(a).toHaveLength(1);

    // A leaves: the plugin keeps its (organization-blind) subscription for B
    await sa.unsubscribeResource({ uri: 'hay://sharedsubs/note://one' });
    expect(textOf(await sb.callTool({ name: 'sharedsubs__touch', arguments: {} }))).toBe('["note://one"]');
    await waitFor(() => b.length === 3, 'the update to B after A left');
    expect(a).toHaveLength(1);
    expect(new Set([...a, ...b])).toEqual(new Set(['hay://sharedsubs/note://one']));

    await sb.unsubscribeResource({ uri: 'hay://sharedsubs/note://one' });
    expect(textOf(await sb.callTool({ name: 'sharedsubs__touch', arguments: {} }))).toBe('[]');
  });
});
