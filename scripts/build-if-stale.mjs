#!/usr/bin/env node
// Builds dist/ with the TypeScript compiler only when a source is newer than the last successful build.
// Contract: exit 0 with dist/ current; a stale or missing dist/ is rebuilt (`tsc -p tsconfig.build.json`,
// incremental); `--force` always builds; `--if-possible` (for `prepare`) exits 0 with a note when TypeScript
// is not installed (`npm install --omit=dev`). The stamp dist/.build-stamp is written after a successful
// build with the build's START time, so a failed build, or a source edited during one, rebuilds next run. Used by `prepare` (npm install) and
// `prestart` (npm start); costs a directory walk (~ms) when nothing changed.
// The dashboard (web/, Vite) is built the same way into web/dist/ with its own stamp; when Vite is not
// installed (`--omit=dev`) it is skipped with a note and the host serves a page saying how to build it. A
// failed dashboard build fails `--force` (npm run build) and only warns otherwise, so `npm start` still
// starts the API.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
/** Inputs of the build: source folders (walked) and config files. */
const SOURCE_DIRS = ['src', 'bench', 'packages/plugin-sdk/src'];
const SOURCE_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];

function newestMtime(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function stale() {
  if (!existsSync(stamp)) return 'no previous build';
  const built = statSync(stamp).mtimeMs;
  for (const p of [...SOURCE_DIRS, ...SOURCE_FILES]) {
    if (newestMtime(join(root, p)) > built) return `${p} changed since the last build`;
  }
  return undefined;
}

const reason = process.argv.includes('--force') ? 'forced' : stale();
if (reason) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    process.stderr.write(
      `hay-plugins: dist/ needs a build (${reason}) but TypeScript is not installed; run \`npm install\`\n`,
    );
    process.exit(process.argv.includes('--if-possible') ? 0 : 1);
  }
  process.stderr.write(`hay-plugins: building dist/ (${reason})\n`);
  const started = new Date();
  for (const project of ['tsconfig.build.json', join('packages', 'plugin-sdk', 'tsconfig.json')]) {
    if (!existsSync(join(root, project))) continue;
    const r = spawnSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  writeFileSync(stamp, `${started.toISOString()}\n`);
  utimesSync(stamp, started, started);
  process.stderr.write(`hay-plugins: built in ${Date.now() - started.getTime()} ms\n`);
}

/** Inputs of the dashboard build. */
const WEB_INPUTS = ['web/src', 'web/public', 'web/index.html', 'web/vite.config.ts', 'package-lock.json'];
const webStamp = join(root, 'web', 'dist', '.build-stamp');

function webStale() {
  if (!existsSync(join(root, 'web', 'index.html'))) return undefined;
  if (!existsSync(webStamp)) return 'no previous build';
  const built = statSync(webStamp).mtimeMs;
  for (const p of WEB_INPUTS)
    if (newestMtime(join(root, p)) > built) return `${p} changed since the last build`;
  return undefined;
}

const webReason =
  process.argv.includes('--force') && existsSync(join(root, 'web', 'index.html')) ? 'forced' : webStale();
if (webReason) {
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  if (!existsSync(vite)) {
    process.stderr.write(
      `hay-plugins: the dashboard (web/) needs a build (${webReason}) but Vite is not installed; run \`npm install\`\n`,
    );
  } else {
    process.stderr.write(`hay-plugins: building the dashboard web/dist/ (${webReason})\n`);
    const started = new Date();
    const r = spawnSync(process.execPath, [vite, 'build', '--config', join(root, 'web', 'vite.config.ts')], {
      stdio: 'inherit',
      cwd: root,
    });
    if (r.status !== 0) {
      process.stderr.write('hay-plugins: the dashboard build failed; the host serves the API without it\n');
      if (process.argv.includes('--force')) process.exit(r.status ?? 1);
    } else {
      writeFileSync(webStamp, `${started.toISOString()}\n`);
      utimesSync(webStamp, started, started);
    }
  }
}
