import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TimeoutError } from '../../src/errors.js';
import { McpConnectionFactory } from '../../src/runtime/client/connection-factory.js';
import type { ConnectionEnd, PluginConnection } from '../../src/runtime/ports.js';
import { ProcessManager } from '../../src/runtime/process/process-manager.js';
import { descendantPids, pidsWithEnvMarker, waitFor } from '../helpers/processes.js';
import {
  DEFAULT_LIMITS,
  FixedEnv,
  FixedRemote,
  localSpec,
  RecordingSandbox,
} from '../fixtures/servers/factory-harness.js';
import { envMarker, memoryLogger } from '../fixtures/servers/harness.js';

const cleanups: (() => Promise<void>)[] = [];

function setup() {
  const { logger, entries } = memoryLogger();
  const marker = envMarker();
  const sandbox = new RecordingSandbox();
  const processes = new ProcessManager({ logger, sandbox, stopGraceMs: 150, killGraceMs: 150 });
  const factory = new McpConnectionFactory({
    logger,
    processes,
    env: new FixedEnv({ [marker.name]: marker.value }),
    remote: new FixedRemote('http://127.0.0.1:1/unused'),
    limits: DEFAULT_LIMITS,
    callTimeoutMs: 5_000,
  });
  cleanups.push(() => processes.close());
  return { factory, sandbox, marker, entries, processes };
}

function textOf(result: { content: unknown[] }): string {
  const first = result.content[0] as { text?: string } | undefined;
  return first?.text ?? '';
}

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

afterAll(async () => {
  await waitFor(() => descendantPids().length === 0, 'no leftover child processes');
  expect(descendantPids()).toEqual([]);
});

describe('McpConnectionFactory (local stdio)', () => {
  it('cold-starts a plugin, lists and calls tools, reports usage, and closes it', async () => {
    const { factory, marker } = setup();
    const conn = await factory.connect('org-1', localSpec('echo.mjs'), { timeoutMs: 10_000 });
    expect(conn.transport).toBe('stdio');
    expect(conn.pid).toBeTypeOf('number');
    const names = (await conn.listTools()).map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'add', 'slow', 'crash', 'hang', 'fail']));
    expect(textOf(await conn.callTool('add', { a: 2, b: 3 }))).toBe('5');
    const failed = await conn.callTool('fail', {});
    expect(failed).toMatchObject({ isError: true, content: [{ type: 'text', text: 'it failed' }] });
    await conn.ping({ timeoutMs: 2_000 });
    const usage = await conn.usage?.();
    expect(usage?.rssBytes).toBeGreaterThan(0);
    expect(usage?.cpuSeconds).toBeGreaterThanOrEqual(0);
    const ends: ConnectionEnd[] = [];
    conn.onEnd((e) => ends.push(e));
    await conn.close();
    await conn.close();
    expect(pidsWithEnvMarker(marker.text)).toEqual([]);
    expect(ends).toEqual([]);
    await expect(conn.callTool('echo', { message: 'x' })).rejects.toMatchObject({ code: 'INSTANCE_FAILED' });
  });

  it('builds the launch spec from the manifest and passes exactly the provided env', async () => {
    const { factory, sandbox } = setup();
    process.env.HAY_TEST_HOST_ONLY = 'host-secret';
    const spec = localSpec('echo.mjs', {
      runtime: { limits: { memoryMb: 128 } },
      permissions: { network: { hosts: ['api.example.com'] }, filesystem: { read: ['/etc/ssl'] } },
    });
    const conn = await factory.connect('org-7', spec, { timeoutMs: 10_000 });
    cleanups.push(() => conn.close());
    delete process.env.HAY_TEST_HOST_ONLY;
    expect(sandbox.launches[0]).toMatchObject({
      orgId: 'org-7',
      pluginId: 'local-echo',
      argv: ['node', 'echo.mjs'],
      limits: { ...DEFAULT_LIMITS, memoryMb: 128 },
      network: { all: false, hosts: ['api.example.com'] },
      readPaths: ['/etc/ssl'],
    });
    const keys = JSON.parse(textOf(await conn.callTool('env', {}))) as string[];
    expect(keys).toEqual(['HAY_PLUGIN_ID', 'HAY_TEST_MARKER', 'PATH']);
  });

  it('logs plugin stderr through the logger', async () => {
    const { factory, entries } = setup();
    const conn = await factory.connect('org-1', localSpec('echo.mjs'), { timeoutMs: 10_000 });
    cleanups.push(() => conn.close());
    await conn.callTool('log', { line: 'hello from stderr' });
    await waitFor(() => entries.some((e) => e.msg === 'hello from stderr'), 'stderr line in the log');
    expect(entries.find((e) => e.msg === 'hello from stderr')).toMatchObject({
      orgId: 'org-1',
      pluginId: 'local-echo',
      pid: conn.pid,
    });
  });

  it('rejects the in-flight call when the plugin crashes and reports the end once', async () => {
    const { factory, sandbox, marker } = setup();
    sandbox.limit = 'memory';
    const conn = await factory.connect('org-1', localSpec('echo.mjs'), { timeoutMs: 10_000 });
    cleanups.push(() => conn.close());
    const ends: ConnectionEnd[] = [];
    conn.onEnd((e) => ends.push(e));
    const error = await conn.callTool('crash', {}).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INSTANCE_CRASHED' });
    expect((error as Error).message).toMatch(/exited with code 3 while it was asked to run tool "crash"/);
    await waitFor(() => ends.length > 0, 'onEnd');
    expect(ends).toEqual([{ kind: 'exited', code: 3, signal: null, limit: 'memory' }]);
    await expect(conn.callTool('echo', { message: 'x' })).rejects.toMatchObject({ code: 'INSTANCE_CRASHED' });
    const late: ConnectionEnd[] = [];
    conn.onEnd((e) => late.push(e));
    await waitFor(() => late.length === 1, 'late onEnd listener');
    await waitFor(() => pidsWithEnvMarker(marker.text).length === 0, 'crashed plugin gone');
  });

  it('times out a hanging tool with TimeoutError and stays usable', async () => {
    const { factory } = setup();
    const conn = await factory.connect('org-1', localSpec('echo.mjs'), { timeoutMs: 10_000 });
    cleanups.push(() => conn.close());
    await expect(conn.callTool('hang', {}, { timeoutMs: 300 })).rejects.toBeInstanceOf(TimeoutError);
    expect(textOf(await conn.callTool('echo', { message: 'still here' }))).toBe('still here');
  });

  it("rejects with the caller's abort reason when the caller aborts", async () => {
    const { factory } = setup();
    const conn = await factory.connect('org-1', localSpec('echo.mjs'), { timeoutMs: 10_000 });
    cleanups.push(() => conn.close());
    const controller = new AbortController();
    const call = conn.callTool('hang', {}, { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(call).rejects.toThrow('caller gave up');
  });

  it('follows tools/list pagination', async () => {
    const { factory } = setup();
    const conn = await factory.connect('org-1', localSpec('paginated.mjs'), { timeoutMs: 10_000 });
    cleanups.push(() => conn.close());
    expect((await conn.listTools()).map((t) => t.name)).toEqual([
      'tool0',
      'tool1',
      'tool2',
      'tool3',
      'tool4',
      'tool5',
      'tool6',
    ]);
  });

  it('fires onToolsChanged on tools/list_changed', async () => {
    const { factory } = setup();
    const conn = await factory.connect('org-1', localSpec('list-changed.mjs'), { timeoutMs: 10_000 });
    cleanups.push(() => conn.close());
    let changes = 0;
    conn.onToolsChanged(() => changes++);
    expect((await conn.listTools()).map((t) => t.name)).toEqual(['grow']);
    await conn.callTool('grow', {});
    await waitFor(() => changes > 0, 'tools/list_changed');
    expect((await conn.listTools()).map((t) => t.name)).toEqual(['grow', 'extra']);
  });

  it('fails with INSTANCE_FAILED naming the exit when the server dies before initialize', async () => {
    const { factory, processes } = setup();
    const error = await factory
      .connect('org-1', localSpec('missing.mjs'), { timeoutMs: 10_000 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INSTANCE_FAILED' });
    expect((error as Error).message).toMatch(/exited with code 1 before completing MCP initialize/);
    expect(processes.list()).toEqual([]);
  });

  it("names the crash's last stderr lines, sanitized, when the server dies before initialize", async () => {
    const { factory, marker } = setup();
    const error = await factory
      .connect('org-1', localSpec('crash-at-start.mjs'), { timeoutMs: 10_000 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INSTANCE_FAILED' });
    const message = (error as Error).message;
    expect(message).toMatch(/exited with code 1 before completing MCP initialize; its last stderr lines: /);
    expect(message).toContain(
      "Cannot find package '@hay-test/does-not-exist' imported from ./crash-at-start.mjs",
    );
    expect(message).toContain('starting with marker [redacted]');
    expect(message).toContain('reading <path> failed');
    expect(message).not.toContain(marker.value);
    expect(message).not.toContain('/etc/hay-secret-config');
    expect(message).not.toMatch(/\bat (async )?[A-Za-z]/);
  });

  it('times out initialize with TimeoutError and stops the process', async () => {
    const { factory, processes, marker } = setup();
    await expect(
      factory.connect('org-1', localSpec('silent.mjs'), { timeoutMs: 500 }),
    ).rejects.toBeInstanceOf(TimeoutError);
    expect(processes.list()).toEqual([]);
    expect(pidsWithEnvMarker(marker.text)).toEqual([]);
  });

  it('rejects a start command that needs a shell', async () => {
    const { factory } = setup();
    const spec = localSpec('echo.mjs');
    spec.manifest.capabilities = {
      mcp: { connection: { type: 'local' }, startCommand: 'node echo.mjs && rm -rf /' },
    };
    await expect(factory.connect('org-1', spec, { timeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
    });
  });

  for (const fixture of ['stubborn.mjs', 'grandchild.mjs']) {
    it(`close() fully kills ${fixture}`, async () => {
      const { factory, marker } = setup();
      const conn: PluginConnection = await factory.connect('org-1', localSpec(fixture), {
        timeoutMs: 10_000,
      });
      if (fixture === 'grandchild.mjs') {
        const grandchild = Number(textOf(await conn.callTool('grandchild', {})));
        expect(pidsWithEnvMarker(marker.text)).toContain(grandchild);
      }
      await conn.close();
      expect(pidsWithEnvMarker(marker.text)).toEqual([]);
    });
  }
});
