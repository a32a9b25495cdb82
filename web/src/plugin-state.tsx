import type { PluginDetail, PluginSummary } from './api.js';

export type PluginState =
  'available' | 'enabled' | 'needs configuration' | 'installing' | 'install failed' | 'running' | 'invalid';

/** Whether a required field without default has no value (a secret counts when its "set" marker is true). */
export function missingConfig(required: readonly string[], configuration: Record<string, unknown>): string[] {
  return required.filter((name) => {
    const v = configuration[name];
    if (v && typeof v === 'object' && 'set' in v) return (v as { set: unknown }).set !== true;
    return v === undefined || v === null || v === '';
  });
}

/** The state the marketplace shows; `detail` (plugins.get) refines installing / needs configuration. */
export function pluginState(p: PluginSummary, detail?: PluginDetail): PluginState {
  if (p.status !== 'ok') return 'invalid';
  if (p.install.error) return 'install failed';
  if (detail?.installing) return 'installing';
  if (!p.enabled) return 'available';
  if (p.instance?.state === 'running') return 'running';
  if (detail && missingConfig(p.requiredConfig, detail.configuration).length > 0)
    return 'needs configuration';
  if (p.instance?.state === 'starting' && (!p.install.installed || !p.install.built)) return 'installing';
  return 'enabled';
}

export function StateBadge({ state }: { state: PluginState }) {
  return <span class={`state state-${state.replace(/ /g, '-')}`}>{state}</span>;
}
