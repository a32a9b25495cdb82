import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, isHayError } from '../errors.js';
import type { HayPluginManifest } from '../manifest/types.js';

/** A plugin folder found on disk, before validation. */
export interface FoundFolder {
  dir: string;
  /** Relative to the plugins directory, posix separators (e.g. `core/x`, `custom/<org>/y`). */
  relPath: string;
  sourceType: 'core' | 'custom';
  organizationId: string | null;
}

export type LoadedFolder = FoundFolder &
  (
    | { ok: true; manifest: HayPluginManifest; checksum: string }
    | { ok: false; error: string; checksum: string }
  );

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function subdirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Lists `core/*` and `custom/{orgId}/*` under `pluginsDir` in a deterministic order. Folders under
 * `custom/` whose name is not an organization UUID are reported through `onIgnored`.
 */
export async function findPluginFolders(
  pluginsDir: string,
  onIgnored: (relPath: string, reason: string) => void,
): Promise<FoundFolder[]> {
  const out: FoundFolder[] = [];
  for (const name of await subdirs(path.join(pluginsDir, 'core'))) {
    out.push({
      dir: path.join(pluginsDir, 'core', name),
      relPath: `core/${name}`,
      sourceType: 'core',
      organizationId: null,
    });
  }
  for (const org of await subdirs(path.join(pluginsDir, 'custom'))) {
    if (!UUID.test(org)) {
      onIgnored(`custom/${org}`, 'folder name is not an organization id (UUID)');
      continue;
    }
    for (const name of await subdirs(path.join(pluginsDir, 'custom', org))) {
      if (name.startsWith('_')) continue; // staging and previous versions live in `_`-prefixed folders
      out.push({
        dir: path.join(pluginsDir, 'custom', org, name),
        relPath: `custom/${org}/${name}`,
        sourceType: 'custom',
        organizationId: org.toLowerCase(),
      });
    }
  }
  return out;
}

/** Maps `fn` over `items` with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function describeLoadError(err: unknown): string {
  if (err instanceof ManifestError) return err.problems.join('\n');
  if (isHayError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}
