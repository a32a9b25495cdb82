import { InstanceError } from '../../errors.js';
import { MAX_JSON_DEPTH, measureJson } from '../json-size.js';

/**
 * A plugin's answer (`what`: e.g. `tool "x"`, `resources/read`) is refused with INSTANCE_FAILED when it
 * nests more than MAX_JSON_DEPTH levels or is over `maxBytes` (approximate, see approxBytes; unset: no size
 * bound). One walk of the value.
 */
export function checkPluginResult(
  pluginId: string,
  result: unknown,
  what: string,
  maxBytes: number | undefined,
): void {
  const { bytes, tooDeep } = measureJson(result);
  if (tooDeep)
    throw new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${pluginId} returned a result nested more than ${MAX_JSON_DEPTH} levels deep for ${what}`,
    );
  if (maxBytes !== undefined && bytes > maxBytes)
    throw new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${pluginId} returned a result of about ${bytes} bytes for ${what}; the limit is ${maxBytes} (HAY_MAX_TOOL_RESULT_BYTES)`,
    );
}

/**
 * Approximate bytes of one page of a plugin's list (tools, resources, templates or prompts: `what`, e.g.
 * `tools/list`), refused with INSTANCE_FAILED naming the item when one nests more than MAX_JSON_DEPTH
 * levels (e.g. an inputSchema): such a list cannot be stored, validated against or sent on. One walk.
 */
export function measureListedItems(pluginId: string, items: readonly unknown[], what: string): number {
  let bytes = 0;
  for (const item of items) {
    const m = measureJson(item);
    if (m.tooDeep) {
      const named = item as { name?: unknown; uri?: unknown } | null;
      const name = named?.name ?? named?.uri;
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${pluginId} answered ${what} with ${typeof name === 'string' ? `"${name.slice(0, 100)}"` : 'an item'} nested more than ${MAX_JSON_DEPTH} levels deep`,
      );
    }
    bytes += m.bytes;
  }
  return bytes;
}
