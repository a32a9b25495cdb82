import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/host.js';
import { descendantPids, pidsWithEnvMarker, waitFor } from '../helpers/processes.js';

/**
 * A fresh `hay-plugins serve` (what `npm start` runs) with no HAY_ADMIN_TOKEN, driven by the curl
 * commands of the README's quick start, parsed from README.md so the two cannot drift apart; then
 * SIGTERM, a clean exit and no plugin process left behind.
 */

interface CurlCall {
  proc: string;
  method: 'GET' | 'POST';
  token: 'ADMIN' | 'KEY';
  body?: string;
  query?: string;
  /** The `# {...}` line after the command in the README: the documented answer. */
  expected?: string;
}

/** The curl commands of the README's first ```sh block that mentions /trpc/, in order. */
function readmeCurlCalls(): CurlCall[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? '')
    .find((b) => b.includes('/trpc/'));
  if (!block) throw new Error('README.md has no ```sh block with curl calls to /trpc/');
  const commands: string[] = [];
  let current = '';
  for (const line of block.split('\n')) {
    current += `${line.replace(/\\$/, '')} `;
    if (!line.endsWith('\\')) {
      commands.push(current.trim());
      current = '';
    }
  }
  const calls: CurlCall[] = [];
  for (const cmd of commands) {
    if (cmd.startsWith('# {') && calls.length > 0)
      (calls[calls.length - 1] as CurlCall).expected = cmd.slice(2);
    const url = /curl .*http:\/\/127\.0\.0\.1:3000\/trpc\/([\w.]+)/.exec(cmd);
    if (!url?.[1]) continue;
    const token = /Authorization: Bearer \$(ADMIN|KEY)/.exec(cmd)?.[1] as 'ADMIN' | 'KEY' | undefined;
    if (!token) throw new Error(`README curl without an Authorization header: ${cmd}`);
    const body = /-d '([^']*)'/.exec(cmd)?.[1];
    const query = /--data-urlencode '([^']*)'/.exec(cmd)?.[1];
    calls.push({
      proc: url[1],
      method: cmd.includes('-X POST') ? 'POST' : 'GET',
      token,
      ...(body !== undefined ? { body } : {}),
      ...(query !== undefined ? { query } : {}),
    });
  }
  return calls;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

let dataDir: string;
let child: ChildProcess | undefined;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let stdout = '';
let stderr = '';
let base: string;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm test does it in pretest)');
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'hay-readme-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('HAY_') && k !== 'DATABASE_URL') env[k] = v;
  Object.assign(env, { HAY_PORT: String(port), HAY_DATA_DIR: dataDir });
  const proc = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'hay-plugins.js'), 'serve'], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  await waitFor(
    async () => {
      if (proc.exitCode !== null)
        throw new Error(`hay-plugins serve exited early (${proc.exitCode}): ${stderr}${stdout}`);
      return fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    },
    'the host to answer /healthz',
    60_000,
  );
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every descendant to exit');
  expect(descendantPids()).toEqual([]);
});

it('generates the admin token into $HAY_DATA_DIR/admin-token (0600) and logs its path, not its value', () => {
  const file = path.join(dataDir, 'admin-token');
  const token = readFileSync(file, 'utf8').trim();
  expect(token.length).toBeGreaterThanOrEqual(32);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const logs = `${stdout}\n${stderr}`;
  const line = logs.split('\n').find((l) => l.includes(file));
  expect(line).toBeDefined();
  expect(line).toMatch(/admin token/);
  expect(logs).not.toContain(token);
});

it('answers the README curl calls as documented, then stops cleanly on a repeated SIGTERM', async () => {
  const calls = readmeCurlCalls();
  expect(calls.map((c) => c.proc)).toEqual([
    'admin.createOrganization',
    'plugins.enable',
    'plugins.invokeTool',
    'plugins.list',
  ]);
  const vars: Record<'ADMIN' | 'KEY', string> = {
    ADMIN: readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim(),
    KEY: '',
  };
  let orgId = '';
  const answers: Record<string, unknown> = {};
  for (const call of calls) {
    const headers: Record<string, string> = { authorization: `Bearer ${vars[call.token]}` };
    let res: Response;
    if (call.method === 'POST') {
      headers['content-type'] = 'application/json';
      res = await fetch(`${base}/trpc/${call.proc}`, { method: 'POST', headers, body: call.body ?? '' });
    } else {
      const [name, value] = (call.query ?? '').split(/=(.*)/s);
      const qs = call.query === undefined ? '' : `?${name}=${encodeURIComponent(value ?? '')}`;
      res = await fetch(`${base}/trpc/${call.proc}${qs}`, { headers });
    }
    const text = await res.text();
    expect(res.status, `${call.proc}: ${text}`).toBe(200);
    if (call.expected !== undefined) expect(JSON.parse(text)).toEqual(JSON.parse(call.expected));
    const data = (JSON.parse(text) as { result: { data: unknown } }).result.data;
    answers[call.proc] = data;
    if (call.proc === 'admin.createOrganization') {
      // `jq -r .result.data.apiKey`
      const created = data as { apiKey: string; organizationId: string };
      vars.KEY = created.apiKey;
      orgId = created.organizationId;
    }
  }
  expect(answers['plugins.enable']).toEqual({ success: true });
  expect(answers['plugins.invokeTool']).toEqual({
    content: [{ type: 'text', text: 'hi' }],
    structuredContent: { message: 'hi' },
  });
  const list = answers['plugins.list'] as {
    id: string;
    enabled: boolean;
    instance: { pid: number | null } | null;
  }[];
  const testPlugin = list.find((p) => p.id === 'hay-plugin-test');
  expect(testPlugin?.enabled).toBe(true);
  expect(list.map((p) => p.id)).toEqual(
    expect.arrayContaining(['email-notifier', 'filesystem', 'http-api-connector', 'remote-knowledge-base']),
  );

  // the plugin runs as a process of this host: hay-plugin-test is a shared instance (runtime.shared), so
  // its environment names the host (HAY_API_URL) and no organization; each call carries the org in _meta
  const marker = `HAY_API_URL=${base}\u0000`;
  expect(pidsWithEnvMarker(`HAY_ORG_ID=${orgId}`)).toEqual([]);
  expect(pidsWithEnvMarker(marker).length).toBeGreaterThan(0);

  // twice, as with `npm start` (npm forwards the signal it also got through the process group): the
  // second one must not kill the host mid-shutdown
  child?.kill('SIGTERM');
  child?.kill('SIGTERM');
  expect(await exited).toEqual({ code: 0, signal: null });
  await waitFor(() => pidsWithEnvMarker(marker).length === 0, 'the plugin process to exit with the host');
  await waitFor(() => descendantPids().length === 0, 'no descendant of the test left');
  expect(stdout).toMatch(/hay plugin host stopped/);
}, 60_000);
