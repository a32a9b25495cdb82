import type { z } from 'zod';
import type { PlatformApiName } from '../manifest/types.js';

/** What a platform API method receives: the verified identity of the calling plugin instance. */
export interface PlatformCallContext {
  orgId: string;
  pluginId: string;
  signal: AbortSignal;
}

/**
 * One platform API. Adding an API = one module exporting a PlatformApi plus one enum value in the
 * manifest schema's permissions.api (and PlatformApiName). The host mounts each method at
 * `POST /v1/platform/<name>/<method>` and checks the caller's token grants `<name>` before running it.
 */
export interface PlatformApi {
  name: PlatformApiName;
  methods: Record<string, PlatformMethod>;
  close?(): Promise<void>;
}

export interface PlatformMethod<S extends z.ZodType = z.ZodType> {
  input: S;
  /** Units of the API's per-org quota one call uses (e.g. recipients of an email); default 1. */
  cost?(input: z.infer<S>): number;
  handler(input: z.infer<S>, ctx: PlatformCallContext): Promise<Record<string, unknown>>;
}

export function method<S extends z.ZodType>(
  input: S,
  handler: PlatformMethod<S>['handler'],
  cost?: PlatformMethod<S>['cost'],
): PlatformMethod<S> {
  return cost ? { input, handler, cost } : { input, handler };
}
