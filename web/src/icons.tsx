/** One icon per plugin type (inline SVG paths, decorative: the type's name is always shown as text). */
const PATHS: Record<string, string> = {
  channel: 'M3 5h14v9H8l-4 3v-3H3z',
  'mcp-connector': 'M7 3v4M13 3v4M5 7h10v3a5 5 0 0 1-10 0zM10 15v3',
  retriever: 'M9 3a6 6 0 1 1 0 12A6 6 0 0 1 9 3zM13.5 13.5 18 18',
  playbook: 'M4 3h9l3 3v11H4zM7 8h6M7 11h6M7 14h4',
  workflow: 'M3 4h5v4H3zM12 12h5v4h-5zM5.5 8v6H12M14.5 12V6H8',
  analytics: 'M3 17h14M5 14V9M9 14V5M13 14v-7M17 14v-3',
};

export const PLUGIN_TYPES = Object.keys(PATHS);

export function TypeIcon({ type }: { type: string }) {
  return (
    <svg class="type-icon" viewBox="0 0 20 20" width="16" height="16" aria-hidden="true" focusable="false">
      <path d={PATHS[type] ?? 'M4 4h12v12H4z'} fill="none" stroke="currentColor" stroke-width="1.6" />
    </svg>
  );
}

export function TypeBadge({ type }: { type: string }) {
  return (
    <span class={`badge type-${PLUGIN_TYPES.includes(type) ? type : 'other'}`}>
      <TypeIcon type={type} />
      {type}
    </span>
  );
}

/**
 * The plugin's own icon when it is an http(s) or data:image URL (shown as <img>, where no script runs),
 * else the icon of its first type.
 */
export function PluginIcon({ icon, type }: { icon: string | null; type: string | undefined }) {
  if (icon && (/^https?:\/\//i.test(icon) || /^data:image\/(png|jpeg|gif|webp|svg\+xml);/i.test(icon)))
    return <img class="plugin-icon" src={icon} alt="" width="32" height="32" referrerpolicy="no-referrer" />;
  return (
    <span class="plugin-icon fallback" aria-hidden="true">
      <TypeIcon type={type ?? ''} />
    </span>
  );
}
