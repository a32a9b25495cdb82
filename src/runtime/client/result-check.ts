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
