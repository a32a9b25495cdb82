#!/usr/bin/env node
// Builds dist/ with the TypeScript compiler only when a source is newer than the last successful build.
// Contract: exit 0 with dist/ current; a stale or missing dist/ is rebuilt (`tsc -p tsconfig.build.json`,
// incremental); `--force` always builds; `--if-possible` (for `prepare`) exits 0 with a note when TypeScript
// is not installed (`npm install --omit=dev`). The stamp dist/.build-stamp is written after a successful
// build with the build's START time, so a failed build, or a source edited during one, rebuilds next run. Used by `prepare` (npm install) and
// `prestart` (npm start); costs a directory walk (~ms) when nothing changed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
/** Inputs of the build: source folders (walked) and config files. */
const SOURCE_DIRS = ['src', 'bench', 'packages/plugin-sdk/src'];
const SOURCE_FILES = [
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
  'package-lock.json',
  'packages/plugin-sdk/tsconfig.json',
];

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
  // the host, then the plugin SDK workspace package (packages/plugin-sdk/dist, offered to plugins as a peer)
  for (const project of ['tsconfig.build.json', 'packages/plugin-sdk/tsconfig.json']) {
    const r = spawnSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  writeFileSync(stamp, `${started.toISOString()}\n`);
  utimesSync(stamp, started, started);
  process.stderr.write(`hay-plugins: built in ${Date.now() - started.getTime()} ms\n`);
}
