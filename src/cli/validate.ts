import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ManifestError } from '../errors.js';
import { MANIFEST_FILE } from '../manifest/load.js';
import type { HayPluginManifest } from '../manifest/types.js';
import { ManifestValidator, manifestSchemaPath } from '../manifest/validator.js';
import { packageRoot } from '../paths.js';

/** Folders below the given one searched for plugins (e.g. plugins/custom/<org>/<plugin>). */
const MAX_DEPTH = 3;
const SKIPPED = new Set(['node_modules', 'dist', '.git', 'base']);

export interface ValidateIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

/**
 * `hay-plugins validate <dir>...`: a plugin folder, or a tree holding plugin folders (up to MAX_DEPTH
 * levels, skipping node_modules/dist). Every plugin is reported: `<file>: ok (id@version)` on stdout, each
 * problem as `<file>: <pointer> <rule>` on stderr, warnings as `<file>: warning: ...`. Exit 1 when any
 * plugin has a problem (or nothing was found), else 0.
 */
export async function validateCommand(args: readonly string[], io: ValidateIo): Promise<number> {
  if (args.length === 0) {
    io.err('usage: hay-plugins validate <plugin-dir | plugins-tree> [...]\n');
    return 1;
  }
  const validator = new ManifestValidator(manifestSchemaPath(path.join(packageRoot(), 'plugins')));
  let failed = 0;
  let checked = 0;
  for (const dir of args) {
    const folders = await pluginFolders(dir);
    if (folders.length === 0) {
      io.err(`${path.join(dir, MANIFEST_FILE)}: cannot read (ENOENT); no plugin folder found under ${dir}\n`);
      failed++;
      continue;
    }
    for (const folder of folders) {
      checked++;
      if (!(await validateOne(folder, validator, io))) failed++;
    }
  }
  if (checked > 1) io.out(`${checked - failed} of ${checked} plugin(s) valid\n`);
  return failed > 0 ? 1 : 0;
}

async function validateOne(dir: string, validator: ManifestValidator, io: ValidateIo): Promise<boolean> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    io.err(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})\n`);
    return false;
  }
  try {
    const manifest = validator.parse(text, file);
    for (const warning of fileWarnings(dir, manifest)) io.err(`${file}: warning: ${warning}\n`);
    io.out(`${file}: ok (${manifest.id}@${manifest.version})\n`);
    return true;
  } catch (err) {
    if (err instanceof ManifestError) {
      for (const p of err.problems) io.err(`${p}\n`);
      return false;
    }
    throw err;
  }
}

/** Checks against the plugin's files that do not make the manifest invalid. */
function fileWarnings(dir: string, manifest: HayPluginManifest): string[] {
  const warnings: string[] = [];
  const entry = manifest.entry;
  if (entry !== undefined && !existsSync(path.resolve(dir, entry)) && !hasBuildStep(dir, manifest))
    warnings.push(
      `/entry names ${JSON.stringify(entry)}, which does not exist and no build step creates it (the host starts capabilities.mcp.startCommand; entry is informational)`,
    );
  return warnings;
}

function hasBuildStep(dir: string, manifest: HayPluginManifest): boolean {
  if (manifest.capabilities?.mcp?.buildCommand !== undefined) return true;
  try {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
      scripts?: Record<string, unknown>;
    };
    return typeof pkg.scripts?.build === 'string';
  } catch {
    return false;
  }
}

/** `dir` itself when it has a manifest, else every folder with one below it, sorted. */
async function pluginFolders(dir: string): Promise<string[]> {
  if (existsSync(path.join(dir, MANIFEST_FILE))) return [dir];
  const found: string[] = [];
  const walk = async (current: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) return;
    let entries;
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!e.isDirectory() || SKIPPED.has(e.name) || e.name.startsWith('.')) continue;
      const child = path.join(current, e.name);
      if (existsSync(path.join(child, MANIFEST_FILE))) found.push(child);
      else await walk(child, depth + 1);
    }
  };
  if ((await stat(dir).catch(() => undefined))?.isDirectory()) await walk(dir, 1);
  return found;
}
