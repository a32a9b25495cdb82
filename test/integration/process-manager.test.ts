import { spawn } from 'node:child_process';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { InstanceError } from '../../src/errors.js';
import { NoSandbox } from '../../src/runtime/process/no-sandbox.js';
import type { ManagedProcess } from '../../src/runtime/process/managed-process.js';
import { readStatFields } from '../../src/runtime/process/process-group.js';
import { ProcessManager } from '../../src/runtime/process/process-manager.js';
import { ProcessStdioTransport } from '../../src/runtime/process/stdio-transport.js';
import { descendantPids, pidsWithEnvMarker, waitFor } from '../helpers/processes.js';
import { envMarker, fixtureLaunch, memoryLogger, SERVERS_DIR } from '../fixtures/servers/harness.js';

const managers: ProcessManager[] = [];

function manager(extra: { parentDeathSignal?: boolean } = {}) {
  const { logger, entries } = memoryLogger();
  const pm = new ProcessManager({
    logger,
    sandbox: new NoSandbox(),
    stopGraceMs: 150,
    killGraceMs: 150,
    ...extra,
  });
  managers.push(pm);
  return { pm, entries };
}

async function mcpClient(proc: ManagedProcess): Promise<Client> {
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(new ProcessStdioTransport(proc));
  return client;
}

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]?.text ?? '';
}

/** True once `pid` no longer runs (gone or a zombie nobody reaped yet). */
function gone(pid: number): boolean {
  const fields = readStatFields(pid);
  return fields === undefined || fields[0] === 'Z';
}

afterEach(async () => {
  await Promise.all(managers.splice(0).map((pm) => pm.close()));
});

afterAll(async () => {
  await waitFor(() => descendantPids().length === 0, 'no leftover child processes');
  expect(descendantPids()).toEqual([]);
});

describe('ProcessManager', () => {
  it('starts a stdio MCP server, serves a call and stops it on close', async () => {
    const { pm } = manager();
    const marker = envMarker();
    const proc = await pm.spawn(fixtureLaunch('echo.mjs', marker));
    const client = await mcpClient(proc);
    expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'hi' } }))).toBe('hi');
    const [info] = pm.list();
    expect(info).toMatchObject({ pid: proc.pid, orgId: 'org-1', pluginId: 'fixture-echo', state: 'running' });
    expect(info?.uptimeMs).toBeGreaterThanOrEqual(0);
    await pm.close();
    expect(pidsWithEnvMarker(marker.text)).toEqual([]);
    expect(pm.list()).toEqual([]);
    await pm.close();
  });

  it('gives the child exactly the launch environment', async () => {
    const { pm } = manager();
    process.env.HAY_TEST_HOST_ONLY = 'secret';
    const marker = envMarker();
    const proc = await pm.spawn(fixtureLaunch('echo.mjs', marker, { PLUGIN_VALUE: 'x' }));
    const client = await mcpClient(proc);
    const keys = JSON.parse(textOf(await client.callTool({ name: 'env', arguments: {} }))) as string[];
    delete process.env.HAY_TEST_HOST_ONLY;
    expect(keys).toEqual(['HAY_TEST_MARKER', 'PATH', 'PLUGIN_VALUE']);
  });

  it('rate-limits plugin stderr: logs the budget at debug, drops the rest with a count and a callback', async () => {
    const { logger, entries } = memoryLogger();
    const dropped: { orgId: string; pluginId: string; lines: number }[] = [];
    const pm = new ProcessManager({
      logger,
      sandbox: new NoSandbox(),
      stopGraceMs: 150,
      killGraceMs: 150,
      stderrLinesPerMinute: 20,
      onStderrDropped: (e) => dropped.push(e),
    });
    managers.push(pm);
    const launch = fixtureLaunch('echo.mjs', envMarker());
    const proc = await pm.spawn({
      ...launch,
      argv: [process.execPath, '-e', "for (let i = 0; i < 500; i++) console.error('flood ' + i)"],
    });
    await proc.exited;
    await waitFor(() => dropped.length > 0, 'the dropped-lines report');
    const lines = entries.filter(
      (e) => e.stream === 'stderr' && typeof e.msg === 'string' && e.msg.startsWith('flood'),
    );
    expect(lines).toHaveLength(20);
    expect(lines.every((e) => e.level === 20 && e.orgId === 'org-1')).toBe(true);
    expect(dropped).toEqual([{ orgId: 'org-1', pluginId: launch.pluginId, lines: 480 }]);
    expect(entries.find((e) => e.dropped === 480)).toMatchObject({
      msg: 'dropped 480 plugin stderr lines (rate limit)',
      orgId: 'org-1',
    });
  });

  it('logs stderr lines with org, plugin and pid, splitting over-long lines', async () => {
    const { logger, entries } = memoryLogger();
    const pm = new ProcessManager({
      logger,
      sandbox: new NoSandbox(),
      stopGraceMs: 150,
      killGraceMs: 150,
      maxStderrLineLength: 10,
    });
    managers.push(pm);
    const proc = await pm.spawn(fixtureLaunch('echo.mjs', envMarker()));
    const client = await mcpClient(proc);
    await client.callTool({ name: 'log', arguments: { line: 'abcdefghijKLMNO' } });
    await waitFor(() => entries.some((e) => e.msg === 'KLMNO'), 'second piece of the long stderr line');
    const first = entries.find((e) => e.msg === 'abcdefghij');
    expect(first).toMatchObject({
      orgId: 'org-1',
      pluginId: 'fixture-echo',
      pid: proc.pid,
      stream: 'stderr',
    });
  });

  it('escalates to SIGKILL for a server that ignores stdin EOF and SIGTERM', async () => {
    const { pm, entries } = manager();
    const marker = envMarker();
    const proc = await pm.spawn(fixtureLaunch('stubborn.mjs', marker));
    await mcpClient(proc);
    const exit = await proc.stop();
    expect(exit.signal).toBe('SIGKILL');
    expect(pidsWithEnvMarker(marker.text)).toEqual([]);
    expect(entries.some((e) => e.msg === 'ignoring SIGTERM')).toBe(true);
    expect(await proc.stop()).toBe(exit);
  });

  it('kills grandchildren in the process group on close', async () => {
    const { pm } = manager();
    const marker = envMarker();
    const proc = await pm.spawn(fixtureLaunch('grandchild.mjs', marker));
    const client = await mcpClient(proc);
    const grandchild = Number(textOf(await client.callTool({ name: 'grandchild', arguments: {} })));
    expect(pidsWithEnvMarker(marker.text).sort()).toEqual([proc.pid, grandchild].sort());
    await pm.close();
    expect(pidsWithEnvMarker(marker.text)).toEqual([]);
  });

  it('stops the rest of the group when the server exits on its own', async () => {
    const { pm } = manager();
    const marker = envMarker();
    const proc = await pm.spawn(fixtureLaunch('grandchild.mjs', marker));
    const client = await mcpClient(proc);
    const grandchild = Number(textOf(await client.callTool({ name: 'grandchild', arguments: {} })));
    await client.callTool({ name: 'exit', arguments: {} });
    expect((await proc.exited).code).toBe(0);
    await waitFor(() => pm.list().length === 0, 'process group fully stopped');
    expect(pidsWithEnvMarker(marker.text)).not.toContain(grandchild);
  });

  it('rejects with INSTANCE_FAILED when the program does not exist', async () => {
    const { pm } = manager({ parentDeathSignal: false });
    const launch = { ...fixtureLaunch('echo.mjs', envMarker()), argv: ['/nonexistent/program'] };
    await expect(pm.spawn(launch)).rejects.toMatchObject({ code: 'INSTANCE_FAILED' });
    expect(pm.list()).toEqual([]);
  });

  it('refuses to spawn after close and stops its reaper', async () => {
    const { pm } = manager();
    await pm.spawn(fixtureLaunch('echo.mjs', envMarker()));
    const reaper = pm.reaperPid();
    expect(reaper).toBeTypeOf('number');
    await pm.close();
    expect(descendantPids()).not.toContain(reaper);
    await expect(pm.spawn(fixtureLaunch('echo.mjs', envMarker()))).rejects.toBeInstanceOf(InstanceError);
  });

  for (const mode of ['with pdeathsig', 'reaper only'] as const) {
    it(`kills every plugin process when the host is SIGKILLed (${mode})`, async () => {
      const marker = envMarker();
      const args = ['--import', 'tsx', path.join(SERVERS_DIR, 'sigkill-host.ts'), marker.value];
      if (mode === 'reaper only') args.push('nopdeath');
      const host = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        host.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0] ?? '');
        });
        host.once('exit', (code) => reject(new Error(`host exited early with ${code}`)));
      });
      const pids = JSON.parse(line) as { child: number; grandchild: number; reaper: number };
      expect(pidsWithEnvMarker(marker.text).sort()).toEqual([pids.child, pids.grandchild].sort());
      const hostExit = new Promise((resolve) => host.once('exit', resolve));
      host.kill('SIGKILL');
      await hostExit;
      await waitFor(
        () => pidsWithEnvMarker(marker.text).length === 0,
        'plugin processes to die after host SIGKILL',
      );
      await waitFor(() => gone(pids.reaper), 'reaper to exit');
    });
  }
});
