import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestHost, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * A published third-party MCP server as a plugin: `plugins/core/filesystem` is only a manifest and a
 * package.json depending on @modelcontextprotocol/server-filesystem. The host installs it (a real
 * `npm install` from the registry, so this needs network) and the server is confined to the
 * organization's data folder through MCP roots.
 */

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({
    corePlugins: ['filesystem'],
    config: { installTimeoutMs: 110_000, startTimeoutMs: 30_000 },
  });
});

afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin and npm process to exit');
  expect(descendantPids()).toEqual([]);
});

function text(result: { content?: unknown }): string {
  return ((result.content ?? []) as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');
}

it('installs the published server with npm and serves its tools in the data folder only', async () => {
  const pluginDir = path.join(t.pluginsDir, 'core', 'filesystem');
  expect(existsSync(path.join(pluginDir, 'node_modules'))).toBe(false);
  const a = await t.createOrganization('fs-a');
  await a.hay.plugins.enable.mutate({ pluginId: 'filesystem', configuration: {} });

  const tools = (await a.hay.plugins.listTools.query({ pluginId: 'filesystem' })).map((x) => x.name);
  expect(tools).toEqual(
    expect.arrayContaining(['list_allowed_directories', 'list_directory', 'write_file', 'read_text_file']),
  );
  expect(
    existsSync(
      path.join(pluginDir, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'package.json'),
    ),
  ).toBe(true);
  expect((await a.hay.plugins.list.query()).find((p) => p.id === 'filesystem')?.install).toEqual({
    installed: true,
    built: true,
    error: null,
  });

  const dataA = path.join(t.dataDir, 'plugin-data', a.organizationId, 'filesystem');
  const allowed = await a.hay.plugins.invokeTool.mutate({
    pluginId: 'filesystem',
    toolName: 'list_allowed_directories',
    arguments: {},
  });
  expect(allowed.isError).toBeFalsy();
  expect(text(allowed)).toContain(dataA);

  const file = path.join(dataA, 'hello.txt');
  const written = await a.hay.plugins.invokeTool.mutate({
    pluginId: 'filesystem',
    toolName: 'write_file',
    arguments: { path: file, content: 'hello from org A' },
  });
  expect(written.isError).toBeFalsy();
  const listed = await a.hay.plugins.invokeTool.mutate({
    pluginId: 'filesystem',
    toolName: 'list_directory',
    arguments: { path: dataA },
  });
  expect(text(listed)).toContain('[FILE] hello.txt');
  const read = await a.hay.plugins.invokeTool.mutate({
    pluginId: 'filesystem',
    toolName: 'read_text_file',
    arguments: { path: file },
  });
  expect(text(read)).toBe('hello from org A');

  // outside the roots: the server refuses, and that is a successful call carrying isError
  const outside = await a.hay.plugins.invokeTool.mutate({
    pluginId: 'filesystem',
    toolName: 'read_text_file',
    arguments: { path: path.join(t.dataDir, 'admin-token') },
  });
  expect(outside.isError).toBe(true);
  expect(text(outside)).toMatch(/denied|outside allowed/i);

  // another organization gets its own folder and cannot read A's file
  const b = await t.createOrganization('fs-b');
  await b.hay.plugins.enable.mutate({ pluginId: 'filesystem', configuration: {} });
  const allowedB = await b.hay.plugins.invokeTool.mutate({
    pluginId: 'filesystem',
    toolName: 'list_allowed_directories',
    arguments: {},
  });
  expect(text(allowedB)).toContain(path.join(t.dataDir, 'plugin-data', b.organizationId, 'filesystem'));
  expect(text(allowedB)).not.toContain(a.organizationId);
  const peek = await b.hay.plugins.invokeTool.mutate({
    pluginId: 'filesystem',
    toolName: 'read_text_file',
    arguments: { path: file },
  });
  expect(peek.isError).toBe(true);
  expect(text(peek)).not.toContain('hello from org A');
}, 120_000);
