import type { KeyScopes } from '../tenancy/organizations.js';

/**
 * Whether a key with `scopes` may reach `pluginId` (tool unset: any of its tools, for listing) or the
 * tool `pluginId/tool`. Unset scopes reach everything of the key's organization.
 */
export function scopeAllows(scopes: KeyScopes | undefined, pluginId: string, tool?: string): boolean {
  if (!scopes) return true;
  if (scopes.plugins?.includes(pluginId)) return true;
  const tools = scopes.tools;
  if (!tools) return false;
  if (tool === undefined) return tools.some((t) => t.startsWith(`${pluginId}/`));
  return tools.includes(`${pluginId}/${tool}`);
}
