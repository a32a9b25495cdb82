import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/** The `hay-plugins` binary as a user runs it: `node bin/hay-plugins.js ...` (needs `npm run build`). */

const BIN = path.join(REPO_ROOT, 'bin', 'hay-plugins.js');
let tmp: string;

/** The host's environment without HAY_* variables, so the developer's shell can't change the outcome. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('HAY_') && k !== 'DATABASE_URL') env[k] = v;
  return { ...env, ...extra };
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm test does it in pretest)');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-cli-'));
});

afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every CLI process to exit');
  expect(descendantPids()).toEqual([]);
});

describe('hay-plugins --help', () => {
  it('exits 0 and lists every command and configuration variable', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const word of [
      'serve',
      'validate',
      'HAY_PORT',
      'HAY_DATA_DIR',
      'HAY_ADMIN_TOKEN',
      'DATABASE_URL',
      '--port',
    ])
      expect(r.stdout).toContain(word);
  });

  it('exits 1 with usage when no command is given, and on an unknown command', async () => {
    const none = await run([]);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('Usage:');
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });
});

describe('hay-plugins validate', () => {
  it('accepts the bundled test plugin', async () => {
    const r = await run(['validate', 'plugins/core/hay-plugin-test']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('plugins/core/hay-plugin-test/manifest.json: ok (hay-plugin-test@1.0.0)');
  });

  it('accepts every bundled plugin', async () => {
    for (const id of ['email-notifier', 'filesystem', 'http-api-connector', 'remote-knowledge-base']) {
      const r = await run(['validate', `plugins/core/${id}`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
  });

  it('exits 1 naming the file and the JSON pointer of every problem', async () => {
    const dir = path.join(tmp, 'broken');
    const file = path.join(dir, 'manifest.json');
    writePlugin(dir, {
      id: 'Bad_Id',
      name: 'Broken',
      version: '1.0.0',
      type: ['nope'],
      capabilities: { mcp: { connection: { type: 'local' }, transport: 'stdio' } },
    });
    const r = await run(['validate', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines.every((l) => l.startsWith(`${file}: /`))).toBe(true);
    expect(r.stderr).toContain(`${file}: /id must match pattern`);
    expect(r.stderr).toContain(`${file}: /type/0 must be one of`);
    expect(r.stderr).toMatch(/\/capabilities\/mcp is missing required property "startCommand"/);
  });

  it('exits 1 with line and column for invalid JSON, and for a folder without a manifest', async () => {
    const dir = path.join(tmp, 'syntax');
    writePlugin(dir, '{"id": "x",\n "name": }');
    const r = await run(['validate', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(dir, 'manifest.json')}: invalid JSON at line 2, column 10`);

    const missing = await run(['validate', path.join(tmp, 'nothing-here')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nothing-here\/manifest\.json: cannot read \(ENOENT\)/);
  });
});

describe('hay-plugins validate (trees and run-time rules)', () => {
  it('validates every plugin of a tree and reports each one', async () => {
    const r = await run(['validate', 'plugins']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const id of ['hay-plugin-test', 'email-notifier', 'filesystem', 'http-api-connector'])
      expect(r.stdout).toContain(`plugins/core/${id}/manifest.json: ok (${id}@`);
    expect(r.stdout).toMatch(/(\d+) of \1 plugin\(s\) valid/);
  });

  it('rejects stdio without startCommand, keeps reporting the other plugins, and warns on a missing entry', async () => {
    const tree = path.join(tmp, 'tree');
    writePlugin(path.join(tree, 'core', 'no-start'), {
      id: 'no-start',
      name: 'No start',
      version: '1.0.0',
      type: ['mcp-connector'],
      capabilities: { mcp: { transport: 'stdio' } },
    });
    writePlugin(path.join(tree, 'custom', 'org-1', 'fine'), {
      id: 'fine',
      name: 'Fine',
      version: '1.0.0',
      type: ['mcp-connector'],
      entry: 'server.js',
      capabilities: { mcp: { startCommand: 'node server.js' } },
    });
    const r = await run(['validate', tree]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${path.join(tree, 'core', 'no-start', 'manifest.json')}: /capabilities/mcp declares a local stdio server but no startCommand`,
    );
    expect(r.stderr).toContain(
      `${path.join(tree, 'custom', 'org-1', 'fine', 'manifest.json')}: warning: /entry names "server.js", which does not exist`,
    );
    expect(r.stdout).toContain('fine/manifest.json: ok (fine@1.0.0)');
    expect(r.stdout).toContain('1 of 2 plugin(s) valid');
  });
});

describe('configuration errors', () => {
  it('exits 2 naming the variable for a bad environment value', async () => {
    const r = await run(['serve'], cleanEnv({ HAY_PORT: 'abc', HAY_DATA_DIR: path.join(tmp, 'never') }));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('configuration error: HAY_PORT must be a non-negative integer; got "abc"');
    expect(existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  it('exits 2 naming the flag for a bad flag, and for an unknown flag', async () => {
    const bad = await run(
      ['serve', '--sandbox', 'maybe'],
      cleanEnv({ HAY_DATA_DIR: path.join(tmp, 'never') }),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--sandbox must be one of auto, strict, off; got "maybe"/);
    const unknown = await run(['serve', '--prot', '1'], cleanEnv({ HAY_DATA_DIR: path.join(tmp, 'never') }));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown flag --prot/);
  });
});

function writePlugin(dir: string, manifest: object | string) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'manifest.json'),
    typeof manifest === 'string' ? manifest : JSON.stringify(manifest, null, 2),
  );
}

describe('hay-plugins serve', () => {
  it('logs a promise rejection nobody handled and keeps serving (Node would end the process)', async () => {
    // a preload that makes a stray rejection on SIGUSR2, once the host runs
    const preload = path.join(tmp, 'stray-rejection.mjs');
    writeFileSync(
      preload,
      "process.on('SIGUSR2', () => { Promise.reject(new Error('stray rejection for the test')); });\n",
    );
    const child = spawn(process.execPath, ['--import', preload, BIN, 'serve'], {
      cwd: REPO_ROOT,
      env: cleanEnv({
        HAY_PORT: '0',
        HAY_DATA_DIR: path.join(tmp, 'serve-data'),
        HAY_ADMIN_TOKEN: 'cli-test-admin-token',
        HAY_LOG_FORMAT: 'json',
        HAY_LOG_LEVEL: 'info',
        HAY_SANDBOX: 'off',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('hay plugin host listening'), 'the host to listen', 60_000);
      const url = /"url":"([^"]+)"/.exec(out.slice(out.indexOf('hay plugin host listening') - 300))?.[1];
      expect(url).toBeDefined();
      child.kill('SIGUSR2');
      await waitFor(() => out.includes('unhandled promise rejection'), 'the rejection to be logged');
      expect(out).toContain('stray rejection for the test');
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);
});
