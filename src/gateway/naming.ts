import { createHash } from 'node:crypto';

/** Longest exposed tool name (the limit of the widest-used agent hosts). */
export const MAX_TOOL_NAME_CHARS = 64;
/** Between plugin id and tool name. Plugin ids are `[a-z0-9-]`, so the first `__` always ends the id. */
export const PREFIX_SEPARATOR = '__';
const HASH_CHARS = 8;
const ALLOWED = /^[A-Za-z0-9_.-]+$/;

export interface ToolRef {
  pluginId: string;
  tool: string;
}

/**
 * The exposed names of one organization's tools, both ways. Built from the whole list at once, so every
 * name is unique and a name maps back to exactly one (plugin, tool).
 */
export interface NameTable {
  /** Exposed name -> plugin tool. */
  resolve(exposed: string): ToolRef | undefined;
  /** Plugin tool -> exposed name. */
  exposedName(ref: ToolRef): string | undefined;
}

/**
 * Names as `<pluginId>__<tool>`; with `unprefixed`, as `<tool>` where no other plugin of the list has a
 * tool of that name. A name over MAX_TOOL_NAME_CHARS, with characters outside `[A-Za-z0-9_.-]`, or
 * colliding with another exposed name is shortened deterministically: the start of the prefixed name,
 * `_`, and 8 hex characters of SHA-256 over (pluginId, tool). The same list always gives the same names.
 */
export function buildNameTable(listed: readonly ToolRef[], options: { unprefixed: boolean }): NameTable {
  // a tool a plugin lists twice is one tool: its name is not a collision
  const refs = [...new Map(listed.map((r) => [pairKey(r), r])).values()];
  const byTool = new Map<string, number>();
  for (const r of refs) byTool.set(r.tool, (byTool.get(r.tool) ?? 0) + 1);
  const wanted = refs.map((r) => {
    const plain = options.unprefixed && byTool.get(r.tool) === 1 ? r.tool : prefixed(r);
    return { ref: r, name: fits(plain) ? plain : hashed(r) };
  });
  const counts = new Map<string, number>();
  for (const w of wanted) counts.set(w.name, (counts.get(w.name) ?? 0) + 1);
  const forward = new Map<string, ToolRef>();
  const backward = new Map<string, string>();
  for (const w of wanted) {
    const pair = pairKey(w.ref);
    const name = counts.get(w.name) === 1 ? w.name : hashed(w.ref);
    if (forward.has(name)) continue; // a SHA-256 prefix collision: the later tool is not exposed
    forward.set(name, w.ref);
    backward.set(pair, name);
  }
  return {
    resolve: (exposed) => forward.get(exposed),
    exposedName: (ref) => backward.get(pairKey(ref)),
  };
}

function prefixed(r: ToolRef): string {
  return `${r.pluginId}${PREFIX_SEPARATOR}${r.tool}`;
}

function fits(name: string): boolean {
  return name.length > 0 && name.length <= MAX_TOOL_NAME_CHARS && ALLOWED.test(name);
}

function hashed(r: ToolRef): string {
  const digest = createHash('sha256').update(r.pluginId).update('\u0000').update(r.tool).digest('hex');
  const head = prefixed(r)
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .slice(0, MAX_TOOL_NAME_CHARS - HASH_CHARS - 1);
  return `${head}_${digest.slice(0, HASH_CHARS)}`;
}

function pairKey(r: ToolRef): string {
  return `${r.pluginId}\u0000${r.tool}`;
}

/** Scheme of exposed resource URIs: `hay://<pluginId>/<the plugin's own URI, verbatim>`. */
export const RESOURCE_URI_PREFIX = 'hay://';
/** Longest exposed resource URI or URI template; longer ones are left out of listings. */
export const MAX_RESOURCE_URI_CHARS = 2_048;
const PLUGIN_ID = /^[a-z0-9][a-z0-9-]*$/;

/**
 * A plugin's resource URI (or URI template) as /mcp exposes it. The plugin's own URI follows the prefix
 * unchanged, so it maps back by slicing, whatever its scheme or characters, and never collides with
 * another plugin's (the plugin id ends at the first `/`; plugin ids have no `/`).
 */
export function exposedUri(pluginId: string, uri: string): string {
  return `${RESOURCE_URI_PREFIX}${pluginId}/${uri}`;
}

/** The plugin and its own URI behind an exposed URI; undefined when `exposed` is not of that form. */
export function parseExposedUri(exposed: string): { pluginId: string; uri: string } | undefined {
  if (!exposed.startsWith(RESOURCE_URI_PREFIX)) return undefined;
  const rest = exposed.slice(RESOURCE_URI_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const pluginId = rest.slice(0, slash);
  const uri = rest.slice(slash + 1);
  if (!PLUGIN_ID.test(pluginId) || uri.length === 0) return undefined;
  return { pluginId, uri };
}
