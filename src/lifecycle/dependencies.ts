import semver from 'semver';
import type { AuditLog } from '../audit/audit-log.js';
import { DependencyError } from '../errors.js';
import type { Caller } from '../invocation/plugin-service.js';
import type { PluginRegistry, RegisteredPlugin } from '../registry/plugin-registry.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';

/** What the scan knows about one plugin folder, for the cross-plugin dependency check. */
export interface ScannedPlugin {
  pluginId: string;
  organizationId: string | null;
  dependencies: Record<string, string> | undefined;
}

/**
 * Cross-plugin validation at scan: every dependency id must name a plugin visible in the dependent's
 * scope (a core plugin depends on core plugins; a custom plugin on core plugins or its organization's
 * own), every range must be a valid semver range, and there must be no cycle. Returns one problem per
 * offending plugin (by index in `plugins`).
 */
export function dependencyProblems(plugins: readonly ScannedPlugin[]): Map<number, string> {
  const problems = new Map<number, string>();
  const core = new Map<string, number>();
  const custom = new Map<string, number>();
  plugins.forEach((p, i) => {
    if (p.organizationId === null) core.set(p.pluginId, i);
    else custom.set(`${p.organizationId}/${p.pluginId}`, i);
  });
  const resolve = (from: ScannedPlugin, id: string): number | undefined =>
    core.get(id) ?? (from.organizationId !== null ? custom.get(`${from.organizationId}/${id}`) : undefined);

  const edges = new Map<number, number[]>();
  plugins.forEach((p, i) => {
    const out: number[] = [];
    for (const [id, range] of Object.entries(p.dependencies ?? {})) {
      const target = resolve(p, id);
      if (target === undefined) {
        problems.set(
          i,
          `dependency "${id}" is not a known plugin${p.organizationId === null ? ' (core plugins can depend on core plugins only)' : ''}`,
        );
        break;
      }
      if (semver.validRange(range) === null) {
        problems.set(i, `dependency "${id}" has an invalid semver range "${range}"`);
        break;
      }
      out.push(target);
    }
    edges.set(i, out);
  });

  // iterative DFS colouring; every plugin on a cycle gets the cycle's path in its message
  const colour = new Map<number, 'grey' | 'black'>();
  for (let start = 0; start < plugins.length; start++) {
    if (colour.has(start)) continue;
    const stack: { node: number; next: number }[] = [{ node: start, next: 0 }];
    const path: number[] = [start];
    colour.set(start, 'grey');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const targets = edges.get(top.node) ?? [];
      if (top.next >= targets.length) {
        colour.set(top.node, 'black');
        stack.pop();
        path.pop();
        continue;
      }
      const t = targets[top.next++]!;
      const c = colour.get(t);
      if (c === 'grey') {
        const cycle = path.slice(path.indexOf(t));
        const names = [...cycle, t].map((n) => plugins[n]?.pluginId ?? '?').join(' -> ');
        for (const n of cycle) if (!problems.has(n)) problems.set(n, `dependency cycle: ${names}`);
      } else if (c === undefined) {
        colour.set(t, 'grey');
        stack.push({ node: t, next: 0 });
        path.push(t);
      }
    }
  }
  return problems;
}

export interface DependencyRulesDeps {
  registry: PluginRegistry;
  settings: PluginSettingsService;
  audit: AuditLog;
  /** The version `orgId` runs of `plugin` (pinned, canary or latest). */
  versionFor(orgId: string, plugin: RegisteredPlugin): Promise<string>;
}

/**
 * Enforces manifest `dependencies` per organization: a plugin is enabled only when each dependency is
 * enabled for that organization at a version in range; a plugin that enabled plugins depend on cannot be
 * disabled or moved to a version outside their ranges.
 */
export class DependencyRules {
  constructor(private readonly d: DependencyRulesDeps) {}

  /**
   * Refuses enabling `plugin` for the caller's organization unless every dependency (transitively) is
   * enabled and in range. With `enableDependencies`, disabled dependencies are enabled first (with an
   * empty configuration, so a dependency that needs configuration is still refused, naming it).
   */
  async beforeEnable(
    caller: Caller,
    plugin: RegisteredPlugin,
    options: { enableDependencies: boolean },
  ): Promise<void> {
    const orgId = caller.organizationId;
    const toEnable: RegisteredPlugin[] = [];
    const seen = new Set<string>([plugin.key]);
    const visit = async (p: RegisteredPlugin): Promise<void> => {
      for (const [id, range] of Object.entries(p.manifest?.dependencies ?? {})) {
        const dep = this.d.registry.get(orgId, id);
        if (!dep || dep.status !== 'ok')
          throw new DependencyError(
            'DEPENDENCY_UNSATISFIED',
            `plugin ${p.pluginId} depends on ${id} (${range}), which is ${dep ? 'not available' : 'not installed'}`,
            { pluginId: p.pluginId, dependency: id, range },
          );
        if (seen.has(dep.key)) continue;
        seen.add(dep.key);
        const version = await this.d.versionFor(orgId, dep);
        if (!semver.satisfies(version, range, { includePrerelease: true }))
          throw new DependencyError(
            'DEPENDENCY_UNSATISFIED',
            `plugin ${p.pluginId} depends on ${id} ${range}, but this organization runs ${id} ${version}`,
            { pluginId: p.pluginId, dependency: id, range, version },
          );
        if (!(await this.d.settings.isEnabled(orgId, dep.key))) {
          if (!options.enableDependencies)
            throw new DependencyError(
              'DEPENDENCY_UNSATISFIED',
              `plugin ${p.pluginId} depends on ${id} (${range}), which is not enabled for this organization; enable ${id} first or pass enableDependencies: true`,
              { pluginId: p.pluginId, dependency: id, range },
            );
          await visit(dep);
          toEnable.push(dep);
        } else await visit(dep);
      }
    };
    await visit(plugin);
    for (const dep of toEnable) {
      try {
        await this.d.settings.enable(orgId, dep.key, dep.manifest?.configSchema ?? {}, {});
      } catch (err) {
        throw new DependencyError(
          'DEPENDENCY_UNSATISFIED',
          `plugin ${plugin.pluginId} needs ${dep.pluginId}, which could not be enabled: ${err instanceof Error ? err.message : 'error'}`,
          { pluginId: plugin.pluginId, dependency: dep.pluginId },
        );
      }
      this.d.audit.record({
        organizationId: orgId,
        actor: caller.actor,
        action: 'plugin.enable',
        pluginId: dep.pluginId,
        outcome: 'ok',
        details: { asDependencyOf: plugin.pluginId },
      });
    }
  }

  /** Refuses disabling `plugin` while enabled plugins of the organization depend on it, naming them. */
  async beforeDisable(orgId: string, plugin: RegisteredPlugin): Promise<void> {
    const dependents = await this.enabledDependents(orgId, plugin);
    if (dependents.length > 0)
      throw new DependencyError(
        'HAS_DEPENDENTS',
        `plugin ${plugin.pluginId} cannot be disabled: ${dependents.map((d) => d.pluginId).join(', ')} ${dependents.length === 1 ? 'depends' : 'depend'} on it; disable ${dependents.length === 1 ? 'it' : 'them'} first`,
        { pluginId: plugin.pluginId, dependents: dependents.map((d) => d.pluginId) },
      );
  }

  /**
   * Refuses moving `orgId` to `version` of `plugin` when an enabled dependent's range excludes it.
   * `orgId` null: every organization that has a dependent enabled.
   */
  async beforeVersionChange(
    orgIds: readonly string[],
    plugin: RegisteredPlugin,
    version: string,
  ): Promise<void> {
    for (const orgId of orgIds) {
      const broken = (await this.enabledDependents(orgId, plugin)).filter(
        (d) =>
          !semver.satisfies(version, d.manifest?.dependencies?.[plugin.pluginId] ?? '*', {
            includePrerelease: true,
          }),
      );
      if (broken.length > 0)
        throw new DependencyError(
          'HAS_DEPENDENTS',
          `plugin ${plugin.pluginId} cannot move to ${version}: ${broken
            .map((d) => `${d.pluginId} needs ${d.manifest?.dependencies?.[plugin.pluginId] ?? '*'}`)
            .join(', ')}`,
          {
            pluginId: plugin.pluginId,
            version,
            dependents: broken.map((d) => d.pluginId),
            organizationId: orgId,
          },
        );
    }
  }

  /** Enabled plugins of `orgId` that declare a dependency on `plugin`. */
  async enabledDependents(orgId: string, plugin: RegisteredPlugin): Promise<RegisteredPlugin[]> {
    const candidates = this.d.registry
      .list(orgId)
      .filter(
        (p) =>
          p.key !== plugin.key &&
          p.manifest?.dependencies?.[plugin.pluginId] !== undefined &&
          this.d.registry.get(orgId, plugin.pluginId)?.key === plugin.key,
      );
    if (candidates.length === 0) return [];
    const enabled = await this.d.settings.enabledMap(
      orgId,
      candidates.map((p) => p.key),
    );
    return candidates.filter((p) => enabled.get(p.key) === true);
  }
}
