import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { ManifestError } from '../errors.js';
import type { HayPluginManifest } from './types.js';
import type { ManifestValidator } from './validator.js';

export const MANIFEST_FILE = 'manifest.json';
/** Larger manifest files are refused before reading. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface LoadedManifest {
  manifest: HayPluginManifest;
  /** The file's text exactly as read (UTF-8). */
  raw: string;
}

/**
 * Reads and validates `<pluginDir>/manifest.json`. `displayPath` is how messages name the file: a plugin
 * folder like `plugins/core/x` (manifest.json is appended) or the manifest path itself; defaults to the
 * real path. Throws ManifestError for a missing, unreadable, oversized, non-JSON or invalid manifest.
 */
export async function loadManifest(
  pluginDir: string,
  validator: ManifestValidator,
  displayPath?: string,
): Promise<LoadedManifest> {
  const file = path.join(pluginDir, MANIFEST_FILE);
  const shown = displayName(displayPath ?? file);
  const raw = await readManifestText(file, shown);
  return { manifest: validator.parse(raw, shown), raw };
}

function displayName(displayPath: string): string {
  const posix = displayPath.split(path.sep).join('/');
  return posix === MANIFEST_FILE || posix.endsWith(`/${MANIFEST_FILE}`)
    ? posix
    : `${posix.replace(/\/+$/, '')}/${MANIFEST_FILE}`;
}

async function readManifestText(file: string, shown: string): Promise<string> {
  let handle;
  try {
    // O_NOFOLLOW: a symlinked manifest could point outside the plugin folder. O_NONBLOCK: never hang on a FIFO.
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new ManifestError([`${shown}: ${openFailure(err)}`]);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new ManifestError([`${shown}: is not a regular file`]);
    if (stat.size > MAX_MANIFEST_BYTES) {
      throw new ManifestError([
        `${shown}: is ${stat.size} bytes; a manifest may be at most ${MAX_MANIFEST_BYTES} bytes`,
      ]);
    }
    return await handle.readFile({ encoding: 'utf8' });
  } catch (err) {
    if (err instanceof ManifestError) throw err;
    throw new ManifestError([`${shown}: cannot be read (${errnoCode(err)})`]);
  } finally {
    await handle.close();
  }
}

function openFailure(err: unknown): string {
  const code = errnoCode(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return 'file not found: every plugin folder needs a manifest.json at its root';
  }
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read: permission denied';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'ELOOP') return 'must be a regular file, not a symbolic link';
  return `cannot be read (${code})`;
}

function errnoCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
