import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { lstat, mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import type { Logger } from '../logger.js';

/** What the host offers plugins as peer dependencies (docs/PLUGIN_API.md, "Dependencies and the MCP SDK"). */
export const HOST_PACKAGES: readonly string[] = ['@modelcontextprotocol/sdk', 'zod', '@hay/plugin-sdk'];

/** One package the host offers plugins: its name, version and folder on the host. */
export interface HostPackage {
  name: string;
  version: string;
  dir: string;
}

/** What linkPeers did for one plugin (for logs and tests). */
export interface PeerLinkReport {
  linked: string[];
  /** Peers left alone: `name: reason` (already present, not offered, version outside the range). */
  skipped: string[];
}

/**
 * Packages the host offers plugins as `peerDependencies` (its MCP SDK, zod, the plugin SDK): a plugin
 * declares the range it needs and, when the host's version satisfies it and the plugin has no
 * `node_modules/<name>` of its own, `linkPeers` links the host's copy there. The link is an absolute
 * symlink to the host's folder, which the sandbox mounts read-only at the same path, so it resolves
 * wherever the plugins folder is. Nothing is linked through a symlinked `node_modules` (or scope folder),
 * so a plugin cannot make the host write outside the plugin folder.
 */
export class HostPackages {
  private readonly offered: ReadonlyMap<string, HostPackage>;

  constructor(
    packages: readonly HostPackage[],
    private readonly logger: Logger,
  ) {
    this.offered = new Map(packages.map((p) => [p.name, p]));
  }

  /** Finds `names` from `fromDir` upwards (Node's lookup), skipping any it cannot find. */
  static resolve(names: readonly string[], fromDir: string, logger: Logger): HostPackages {
    const found: HostPackage[] = [];
    for (const name of names) {
      for (let dir = fromDir; ; dir = path.dirname(dir)) {
        const candidate = path.join(dir, 'node_modules', ...name.split('/'));
        const pkgFile = path.join(candidate, 'package.json');
        if (existsSync(pkgFile)) {
          try {
            const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version?: unknown };
            // the real folder (a workspace package is a symlink into packages/): the sandbox mounts it
            if (typeof pkg.version === 'string')
              found.push({ name, version: pkg.version, dir: realpathSync(candidate) });
          } catch {
            // unreadable package.json: not offered
          }
          break;
        }
        if (path.dirname(dir) === dir) break;
      }
    }
    return new HostPackages(found, logger);
  }

  list(): HostPackage[] {
    return [...this.offered.values()];
  }

  /** Links the offered peers of the plugin in `pluginDir` (see the class comment). Never throws for a peer. */
  async linkPeers(pluginDir: string): Promise<PeerLinkReport> {
    const report: PeerLinkReport = { linked: [], skipped: [] };
    let peers: Record<string, unknown> = {};
    try {
      const pkg = JSON.parse(await readFile(path.join(pluginDir, 'package.json'), 'utf8')) as {
        peerDependencies?: unknown;
      };
      if (typeof pkg.peerDependencies === 'object' && pkg.peerDependencies !== null)
        peers = pkg.peerDependencies as Record<string, unknown>;
    } catch {
      return report;
    }
    for (const [name, range] of Object.entries(peers)) {
      const offered = this.offered.get(name);
      if (!offered) {
        report.skipped.push(`${name}: not offered by the host`);
        continue;
      }
      if (typeof range !== 'string' || !semver.satisfies(offered.version, range)) {
        report.skipped.push(`${name}: the host has ${offered.version}, outside ${JSON.stringify(range)}`);
        continue;
      }
      const reason = await this.link(pluginDir, offered).catch((err: unknown) =>
        // a concurrent link of the same plugin (another host sharing the folder) is fine
        (err as NodeJS.ErrnoException).code === 'EEXIST'
          ? 'the plugin has its own copy'
          : `could not link: ${(err as Error).message}`,
      );
      if (reason === undefined) report.linked.push(`${name}@${offered.version}`);
      else report.skipped.push(`${name}: ${reason}`);
    }
    if (report.linked.length > 0 || report.skipped.length > 0)
      this.logger.info({ pluginDir, ...report }, 'host packages linked for peer dependencies');
    return report;
  }

  /** Undefined when linked, else why not. */
  private async link(pluginDir: string, pkg: HostPackage): Promise<string | undefined> {
    const segments = ['node_modules', ...pkg.name.split('/')];
    let current = pluginDir;
    for (const [i, segment] of segments.entries()) {
      current = path.join(current, segment);
      const st = await lstat(current).catch(() => undefined);
      const last = i === segments.length - 1;
      if (last) {
        if (st) return 'the plugin has its own copy';
        await symlink(pkg.dir, current, 'dir');
        return undefined;
      }
      if (st?.isSymbolicLink() || (st && !st.isDirectory()))
        return `${segments.slice(0, i + 1).join('/')} is not a plain folder`;
      if (!st) {
        await mkdir(current, { mode: 0o755 }).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        });
        if (!(await lstat(current)).isDirectory())
          return `${segments.slice(0, i + 1).join('/')} is not a plain folder`;
      }
    }
    return 'unreachable';
  }
}
