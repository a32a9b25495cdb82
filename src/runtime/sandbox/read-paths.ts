import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { HayError } from '../../errors.js';
import { pathsOverlap } from './launch-args.js';

export interface ReadPathPolicyOptions {
  /**
   * Host paths a tenant (custom/uploaded) manifest's `permissions.filesystem.read` may name: each requested
   * path must lie inside one of them (HAY_FILESYSTEM_READ_ALLOW). Empty: tenant plugins may request none.
   */
  allow: readonly string[];
  /** Paths no plugin may read, equal, contain or lie inside (data dir, plugins dir, uploads). */
  protectedPaths: readonly string[];
}

/**
 * Decides which host paths a manifest's `permissions.filesystem.read` may bind into the sandbox. Symlinks
 * are resolved before comparing, so a link into a protected folder is refused like the folder itself.
 */
export class ReadPathPolicy {
  readonly #o: ReadPathPolicyOptions;

  constructor(options: ReadPathPolicyOptions) {
    this.#o = options;
  }

  /**
   * The resolved paths, or PERMISSION_DENIED naming the first refused path and why. Core manifests are the
   * operator's own: only the protected paths apply to them; tenant manifests must also stay in `allow`.
   */
  async check(pluginId: string, requested: readonly string[], trust: 'core' | 'tenant'): Promise<string[]> {
    const out: string[] = [];
    if (requested.length === 0) return out;
    const resolvedProtected = await Promise.all(this.#o.protectedPaths.map(resolve));
    const resolvedAllow = await Promise.all(this.#o.allow.map(resolve));
    for (const p of requested) {
      if (!path.isAbsolute(p))
        throw denied(`Plugin ${pluginId}: filesystem.read path must be absolute: ${p}`);
      const resolved = await resolve(p);
      if (resolvedProtected.some((q) => pathsOverlap(resolved, q)))
        throw denied(`Plugin ${pluginId} may not read ${p}: it overlaps a protected host directory`);
      if (trust === 'tenant' && !resolvedAllow.some((a) => within(resolved, a)))
        throw denied(
          resolvedAllow.length === 0
            ? `Plugin ${pluginId} may not read ${p}: the operator allows no filesystem.read paths for uploaded plugins (HAY_FILESYSTEM_READ_ALLOW)`
            : `Plugin ${pluginId} may not read ${p}: it is outside the paths the operator allows (HAY_FILESYSTEM_READ_ALLOW)`,
        );
      out.push(resolved);
    }
    return out;
  }
}

function denied(message: string): HayError {
  return new HayError('PERMISSION_DENIED', message, { details: { field: 'permissions.filesystem.read' } });
}

function resolve(p: string): Promise<string> {
  return realpath(p).catch(() => path.resolve(p));
}

function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}
