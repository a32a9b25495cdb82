import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT, startTestHost, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/** What a new plugin author does: new, edit one tool, validate, run the generated test, serve it and call it. */
const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'hay-plugins.js');
let tmp = '';
let t: TestHost | undefined;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm test does it in pretest)');
  if (!existsSync(path.join(REPO_ROOT, 'packages', 'plugin-sdk', 'dist', 'testing.js')))
    await run(
      process.execPath,
      [
        path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        'packages/plugin-sdk/tsconfig.json',
      ],
      { cwd: REPO_ROOT },
    );
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-new-'));
}, 120_000);

afterAll(async () => {
  await t?.close();
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every process to exit');
  expect(descendantPids()).toEqual([]);
});

it('new -> edit a tool -> validate -> generated test -> enable and call on a host', async () => {
  const created = await run(process.execPath, [BIN, 'new', 'weather-desk', '--dir', tmp]);
  expect(created.stdout).toContain(`created ${path.join(tmp, 'weather-desk')}`);
  const dir = path.join(tmp, 'weather-desk');

  // edit the tool: a second sentence in the greeting, and the generated test's expectation with it
  const server = path.join(dir, 'mcp', 'index.js');
  const source = readFileSync(server, 'utf8');
  expect(source).toContain('`${ctx.config.greeting}, ${name}!`');
  writeFileSync(
    server,
    source.replace('`${ctx.config.greeting}, ${name}!`', '`${ctx.config.greeting}, ${name}! Sunny today.`'),
  );
  const testFile = path.join(dir, 'test', 'plugin.test.mjs');
  writeFileSync(
    testFile,
    readFileSync(testFile, 'utf8').replace("'Hello, Ada!'", "'Hello, Ada! Sunny today.'"),
  );

  const valid = await run(process.execPath, [BIN, 'validate', dir]);
  expect(valid.stdout).toContain('manifest.json: ok (weather-desk@0.1.0)');

  // the generated package links the SDK and the host from this checkout (file: devDependencies): no registry
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    timeout: 120_000,
  });
  const tested = await run('npm', ['test', '--silent'], { cwd: dir, timeout: 180_000 });
  expect(tested.stdout).toMatch(/# pass 1/);
  expect(tested.stdout).toMatch(/# fail 0/);

  t = await startTestHost({ plugins: {} });
  const org = await t.createOrganization('authors');
  const target = path.join(t.pluginsDir, 'custom', org.organizationId, 'weather-desk');
  cpSync(dir, target, { recursive: true, filter: (src) => path.basename(src) !== 'node_modules' });
  await t.admin.admin.rescanPlugins.mutate();
  await org.hay.plugins.enable.mutate({ pluginId: 'weather-desk', configuration: { greeting: 'Hi' } });
  const result = await org.hay.plugins.invokeTool.mutate({
    pluginId: 'weather-desk',
    toolName: 'greet',
    arguments: { name: 'Ada' },
  });
  expect(result).toMatchObject({ content: [{ type: 'text', text: 'Hi, Ada! Sunny today.' }] });
}, 400_000);

it.each(['remote', 'http-api'])(
  'new --template %s writes a plugin that validates and passes its own generated test',
  async (template) => {
    const name = `tpl-${template}`;
    await run(process.execPath, [BIN, 'new', name, '--template', template, '--dir', tmp]);
    const dir = path.join(tmp, name);
    const valid = await run(process.execPath, [BIN, 'validate', dir]);
    expect(valid.stdout).toContain(`manifest.json: ok (${name}@0.1.0)`);
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: dir,
      timeout: 120_000,
    });
    const tested = await run('npm', ['test', '--silent'], { cwd: dir, timeout: 180_000 });
    expect(tested.stdout).toMatch(/# pass 1/);
    expect(tested.stdout).toMatch(/# fail 0/);
  },
  400_000,
);
