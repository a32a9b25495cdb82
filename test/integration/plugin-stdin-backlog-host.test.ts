import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../src/api/router.js';
import { startTestHost, TOOLKIT_SERVER, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Through a host: a plugin that stops reading its stdin during a call and floods the host with requests
 * (whose answers pile up behind the full pipe) is stopped at the backlog bound. The call in flight fails
 * at once with INSTANCE_CRASHED naming the bound (before, the message was only "exited with code 0") instead
 * of waiting for its deadline, and the next call gets a new process.
 */
const FLOODING_SERVER = TOOLKIT_SERVER.replace(
  'await server.connect(new StdioServerTransport());',
  `server.registerTool('flood', { inputSchema: {} }, () => {
  process.stdin.pause();
  process.stdin.removeAllListeners('data');
  const id = 'x'.repeat(1024 * 1024);
  for (let i = 0; i < 64; i++)
    process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: id + i, method: 'ping' }) + '\\n');
  return new Promise(() => {});
});
await server.connect(new StdioServerTransport());`,
);

let t: TestHost;
let org: Awaited<ReturnType<TestHost['createOrganization']>>;

beforeAll(async () => {
  t = await startTestHost({
    corePlugins: [],
    plugins: { 'core/flooder': toolkitPlugin('flooder', {}, { 'server.mjs': FLOODING_SERVER }) },
    // a deadline far beyond what the test waits: the call must end by the bound, not by its timeout
    config: { callTimeoutMs: 120_000, startTimeoutMs: 10_000, maxStdinBacklogBytes: 4 * 1024 * 1024 },
  });
  org = await t.createOrganization('flood');
  await org.hay.plugins.enable.mutate({ pluginId: 'flooder', configuration: {} });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

describe('a plugin that stops reading its stdin during a call', () => {
  it('fails that call with INSTANCE_CRASHED naming HAY_MAX_STDIN_BACKLOG_BYTES, and the next call runs on a new process', async () => {
    const echo = () =>
      org.hay.plugins.invokeTool.mutate({
        pluginId: 'flooder',
        toolName: 'echo',
        arguments: { message: 'hi' },
      });
    expect((await echo()).content).toEqual([{ type: 'text', text: 'hi' }]);
    const pidOf = () =>
      t.host.services.instances
        .listInstances({ orgId: org.organizationId })
        .find((i) => i.pluginId === 'flooder' && i.state === 'running')?.pid;
    const first = pidOf();
    const err = await org.hay.plugins.invokeTool
      .mutate({ pluginId: 'flooder', toolName: 'flood', arguments: {} })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(TRPCClientError);
    expect((err as TRPCClientError<AppRouter>).data?.hayCode).toBe('INSTANCE_CRASHED');
    expect((err as Error).message).toMatch(/does not read its stdin.*HAY_MAX_STDIN_BACKLOG_BYTES/);
    await waitFor(
      async () =>
        await echo().then(
          () => true,
          () => false,
        ),
      'a call on the restarted plugin',
    );
    expect(pidOf()).toBeDefined();
    expect(pidOf()).not.toBe(first);
  }, 60_000);
});
