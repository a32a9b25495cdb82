import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPluginCommand } from '../../src/cli/new-plugin.js';
import { REPO_ROOT } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * `hay-plugins dev <dir>` as an author runs it: a real child process (`node bin/hay-plugins.js`, needs
 * `npm run build`) serving a plugin written by `hay-plugins new`, driven through stdin: list tools, call a
 * tool, edit the server (debounced restart picks up the new tool), break it (the crash cause from stderr
 * is printed), break the manifest (validation problems printed, nothing restarted), quit (every process
 * ends). `--call` runs one call and exits with its outcome.
 */

const BIN = path.join(REPO_ROOT, 'bin', 'hay-plugins.js');
let tmp: string;
let dir: string;

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('HAY_') && k !== 'DATABASE_URL') env[k] = v;
  return env;
}

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'dev.js')))
    throw new Error('dist/ is missing or stale: run `npm run build` (npm test does it in pretest)');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-dev-test-'));
  const io = { out: () => undefined, err: (s: string) => process.stderr.write(s) };
  expect(await newPluginCommand(['dev-demo', '--dir', tmp], io)).toBe(0);
  dir = path.join(tmp, 'dev-demo');
  writeFileSync(path.join(dir, 'hay-dev.config.json'), JSON.stringify({ greeting: 'Hi' }));
});

afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every CLI and plugin process to exit', 20_000);
});

class Dev {
  out = '';
  err = '';
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, 'dev', ...args], { cwd: tmp, env: cleanEnv() });
    this.child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.err += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }
  send(line: string) {
    this.child.stdin.write(`${line}\n`);
  }
  /** Waits until `stream` has `text` after position `from`; returns the position after it. */
  async until(stream: 'out' | 'err', text: string | RegExp, from = 0, timeoutMs = 45_000): Promise<number> {
    let at = -1;
    await waitFor(
      () => {
        const s = this[stream].slice(from);
        const m = typeof text === 'string' ? s.indexOf(text) : s.search(text);
        if (m >= 0) at = from + m + (typeof text === 'string' ? text.length : 1);
        return m >= 0;
      },
      `dev ${stream} to show ${String(text)}; stdout:\n${this.out}\nstderr:\n${this.err}`,
      timeoutMs,
    );
    return at;
  }
}

describe('hay-plugins dev', () => {
  it(
    'serves the plugin, calls tools, restarts on change and prints crash causes',
    { timeout: 400_000 },
    async () => {
      const dev = new Dev([dir, '--debounce-ms', '150']);
      try {
        await dev.until('out', 'valid: dev-demo@0.1.0');
        let o = await dev.until('out', 'tools: greet');
        expect(dev.out).toMatch(/watching .*dev-demo/);

        dev.send('call greet {"name": "Ada"}');
        o = await dev.until('out', 'result: Hi, Ada!', o);

        // edit the server: a second tool
        const server = path.join(dir, 'mcp', 'index.js');
        const source = readFileSync(server, 'utf8');
        writeFileSync(
          server,
          source.replace(
            '  .run();',
            "  .tool('shout', { description: 'Shouts', input: { text: z.string() } }, ({ text }) => text.toUpperCase())\n  .run();",
          ),
        );
        o = await dev.until('out', 'changed: restarting', o);
        o = await dev.until('out', 'tools: greet, shout', o);
        dev.send('call shout {"text": "quiet"}');
        o = await dev.until('out', 'result: QUIET', o);

        // break it: the crash cause (from the server's stderr) is in the error
        let e = dev.err.length;
        writeFileSync(server, "import 'no-such-package-xyz';\n");
        o = await dev.until('out', 'changed: restarting', o);
        e = await dev.until('err', /error INSTANCE_FAILED: [\s\S]*no-such-package-xyz/, e);

        // a bad manifest: problems printed, nothing started
        const manifestFile = path.join(dir, 'manifest.json');
        const manifest = readFileSync(manifestFile, 'utf8');
        writeFileSync(manifestFile, manifest.replace('"version": "0.1.0"', '"version": "one"'));
        o = await dev.until('out', 'changed: restarting', o);
        e = await dev.until('err', /invalid:\n {2}.*\/version/, e);

        // fixed again
        writeFileSync(server, source);
        writeFileSync(manifestFile, manifest);
        await dev.until('out', /tools: greet\n/, o);
        dev.send('call nope {}');
        await dev.until('err', /error (TOOL_NOT_FOUND|ARGUMENTS_INVALID)/, e);

        const pids = descendantPids(dev.child.pid);
        expect(pids.length).toBeGreaterThan(0);
        dev.send('quit');
        expect(await dev.exited).toBe(0);
        await waitFor(() => pids.every((p) => !alive(p)), 'the plugin processes of the dev host to end');
      } finally {
        dev.child.kill('SIGKILL');
      }
    },
  );

  it('--call runs one call and exits with its outcome', { timeout: 120_000 }, async () => {
    const ok = new Dev([dir, '--call', 'greet', '--args', '{"name":"Bo"}']);
    ok.child.stdin.end();
    expect(await ok.exited).toBe(0);
    expect(ok.out).toContain('result: Hi, Bo!');
    const bad = new Dev([dir, '--call', 'greet', '--args', '{}']);
    bad.child.stdin.end();
    expect(await bad.exited).toBe(1);
    expect(bad.err).toMatch(/error ARGUMENTS_INVALID/);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
