import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT, startTestHost, type TestHost } from '../helpers/host.js';

/**
 * The typed client as a project outside this repository uses it: `npm pack` of packages/client, installed
 * into a temp project (with its own TypeScript; the client's dependencies are packed from this checkout's
 * node_modules so no registry is needed), type-checked against AppRouter (wrong inputs and unknown output
 * fields must fail: @ts-expect-error lines that would be unused if the types were `any`), then run
 * against a real host.
 */
const run = promisify(execFile);
let tmp = '';
let t: TestHost | undefined;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'src', 'api', 'client.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm test does it in pretest)');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-client-pkg-'));
});

afterAll(async () => {
  await t?.close();
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

const TYPED = `import { createHayClient, TRPCClientError, type AppRouter, type HayClient } from '@hay/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';

const hay: HayClient = createHayClient({ url: 'http://127.0.0.1:1', apiKey: 'k' });
export const call = () => hay.plugins.invokeTool.mutate({ pluginId: 'x', toolName: 'y', arguments: {} });
// @ts-expect-error pluginId is a string
export const bad = () => hay.plugins.get.query({ pluginId: 1 });
type CatalogInput = inferRouterInputs<AppRouter>['plugins']['catalog'];
export const q: CatalogInput = { query: 'memory', type: 'local', limit: 10 };
// @ts-expect-error type is local | remote
export const wrong: CatalogInput = { type: 'npm' };
type CatalogOutput = inferRouterOutputs<AppRouter>['plugins']['catalog'];
export const installed = (o: CatalogOutput): boolean[] => o.entries.map((e) => e.installed);
// @ts-expect-error no such field
export const nope = (o: CatalogOutput) => o.entries[0]?.notAField;
export const isErr = (e: unknown) => e instanceof TRPCClientError;
`;

it('npm pack of @hay/client installs, type-checks and calls a host from a project outside the repo', async () => {
  const packs = path.join(tmp, 'packs');
  mkdirSync(packs);
  await run('npm', ['pack', '--pack-destination', packs, '--silent'], {
    cwd: path.join(REPO_ROOT, 'packages', 'client'),
    timeout: 120_000,
  });
  for (const dep of ['@trpc/client', '@trpc/server', 'zod', 'typescript'])
    await run(
      'npm',
      ['pack', path.join(REPO_ROOT, 'node_modules', dep), '--pack-destination', packs, '--silent'],
      {
        cwd: tmp,
        timeout: 120_000,
      },
    );
  const tarball = (prefix: string) => {
    const f = readdirSync(packs).find((x) => x.startsWith(prefix) && x.endsWith('.tgz'));
    if (!f) throw new Error(`no ${prefix} tarball`);
    return `file:${path.join(packs, f)}`;
  };
  const proj = path.join(tmp, 'outside');
  mkdirSync(proj);
  writeFileSync(
    path.join(proj, 'package.json'),
    JSON.stringify({
      name: 'outside',
      private: true,
      type: 'module',
      dependencies: {
        '@hay/client': tarball('hay-client-'),
        '@trpc/client': tarball('trpc-client-'),
        '@trpc/server': tarball('trpc-server-'),
        zod: tarball('zod-'),
      },
      devDependencies: { typescript: tarball('typescript-') },
    }),
  );
  writeFileSync(
    path.join(proj, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      include: ['index.ts'],
    }),
  );
  writeFileSync(path.join(proj, 'index.ts'), TYPED);
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: proj,
    timeout: 180_000,
  });
  expect(existsSync(path.join(proj, 'node_modules', '@hay', 'client', 'dist', 'index.d.ts'))).toBe(true);
  await run(process.execPath, [path.join(proj, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], {
    cwd: proj,
    timeout: 120_000,
  });

  t = await startTestHost({ corePlugins: ['hay-plugin-test'] });
  const org = await t.createOrganization('outside');
  writeFileSync(
    path.join(proj, 'call.mjs'),
    `import { createHayClient } from '@hay/client';
const hay = createHayClient({ url: process.env.HAY_URL, apiKey: process.env.HAY_KEY });
const list = await hay.plugins.list.query();
process.stdout.write(JSON.stringify(list.map((p) => p.id)));
`,
  );
  const out = await run(process.execPath, ['call.mjs'], {
    cwd: proj,
    env: { ...process.env, HAY_URL: t.url, HAY_KEY: org.apiKey },
  });
  expect(JSON.parse(out.stdout)).toContain('hay-plugin-test');
}, 400_000);
