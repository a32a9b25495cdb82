import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestHost, type TestHost } from '../helpers/host.js';
import { descendantPids, pidsWithEnvMarker, waitFor } from '../helpers/processes.js';

/**
 * The MCP Inspector CLI (`@modelcontextprotocol/inspector-cli`, the official Node 20 one) against `/mcp`:
 * `--cli <url> --transport http --header "Authorization: Bearer <key>" --method tools/list | tools/call`,
 * run as a child process without a shell, its JSON output parsed.
 */

const CLI = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'inspector-cli', 'build', 'cli.js');
const present = existsSync(CLI);
if (!present) console.warn(`gateway-inspector: skipped, the Inspector CLI is not installed (${CLI})`);

/** Every process a run starts carries this in its environment (the CLI's launcher spawns `node index.js`). */
const MARKER_VAR = 'HAY_INSPECTOR_TEST';
const MARKER = `${MARKER_VAR}=${process.pid}`;
const RUN_TIMEOUT_MS = 30_000;

let t: TestHost;
let org: { organizationId: string; apiKey: string };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in its own process group; past the bound the whole group is killed. */
function inspector(key: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--cli',
        `${t.url}/mcp`,
        '--transport',
        'http',
        '--header',
        `Authorization: Bearer ${key}`,
        ...args,
      ],
      {
        // the CLI (1.0.3) probes `../package.json` relative to the working directory but imports it relative
        // to its own file: from its build folder both resolve to its own package.json
        cwd: path.dirname(CLI),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, [MARKER_VAR]: String(process.pid) },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`inspector CLI did not exit within ${RUN_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  if (!present) return;
  t = await startTestHost({ corePlugins: ['hay-plugin-test'] });
  const created = await t.createOrganization('inspector');
  org = created;
  await created.hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
});

afterAll(async () => {
  if (!present) return;
  await t?.close();
  await waitFor(
    () => descendantPids().length === 0 && pidsWithEnvMarker(MARKER).length === 0,
    'every plugin and inspector process to exit',
  );
});

describe.skipIf(!present)('MCP Inspector CLI against /mcp', () => {
  it('lists the organization tools (--method tools/list)', async () => {
    const run = await inspector(org.apiKey, ['--method', 'tools/list']);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { tools: { name: string; inputSchema: unknown }[] };
    const echo = out.tools.find((x) => x.name === 'hay-plugin-test__echo');
    expect(echo?.inputSchema).toMatchObject({ type: 'object', properties: { message: { type: 'string' } } });
  });

  it('calls a tool (--method tools/call --tool-name --tool-arg)', async () => {
    const run = await inspector(org.apiKey, [
      '--method',
      'tools/call',
      '--tool-name',
      'hay-plugin-test__echo',
      '--tool-arg',
      'message=from the inspector',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { content: { type: string; text?: string }[]; isError?: boolean };
    expect(out.isError ?? false).toBe(false);
    expect(out.content.map((c) => c.text ?? '').join('')).toContain('from the inspector');
  });

  it('fails clearly with a wrong key: non-zero exit, 401 on stderr, nothing on stdout', async () => {
    const run = await inspector('hay_not-a-key', ['--method', 'tools/list']);
    expect(run.code).not.toBe(0);
    expect(run.stdout.trim()).toBe('');
    expect(run.stderr).toMatch(/401|unauthorized/i);
  });
});
