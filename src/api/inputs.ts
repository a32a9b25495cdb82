import { z } from 'zod';

/** Edge validation of every API input. Sizes are bounded here, once. */
export const LIMITS = {
  nameChars: 200,
  pluginIdChars: 100,
  toolNameChars: 128,
  argumentBytes: 1024 * 1024,
  configurationBytes: 64 * 1024,
  batchCalls: 100,
};

/** A refinement bounding the JSON size of a value (`what` names it in the message). */
export const jsonBytesAtMost = (max: number, what: string) => (value: unknown, ctx: z.RefinementCtx) => {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    // nesting deeper than the stack (JSON.parse takes it, JSON.stringify does not)
    if (!(err instanceof RangeError)) throw err;
    ctx.addIssue({ code: 'custom', message: `${what} nest too deeply to be serialized` });
    return;
  }
  const size = Buffer.byteLength(text ?? '');
  if (size > max) ctx.addIssue({ code: 'custom', message: `${what} is ${size} bytes; the limit is ${max}` });
};

export const pluginId = z
  .string()
  .min(1)
  .max(LIMITS.pluginIdChars)
  .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'must be a plugin id (lowercase letters, digits, hyphens)');
export const uuid = z.uuid();
export const object = z.record(z.string(), z.unknown());

export const configuration = object.superRefine(jsonBytesAtMost(LIMITS.configurationBytes, 'configuration'));
export const toolArguments = object.superRefine(jsonBytesAtMost(LIMITS.argumentBytes, 'arguments'));

export const toolCall = z.object({
  pluginId,
  toolName: z.string().min(1).max(LIMITS.toolNameChars),
  arguments: toolArguments.default({}),
  /** The end user the call is for (routes within-organization canary rollouts); never stored. */
  subjectId: z.string().min(1).max(200).optional(),
});

export const inputs = {
  createOrganization: z.object({ name: z.string().trim().min(1).max(LIMITS.nameChars) }),
  createApiKey: z.object({
    organizationId: uuid,
    role: z.enum(['admin', 'member']).default('member'),
    /** Least privilege: the key reaches only these plugins and/or `<pluginId>/<tool>` tools. */
    restrict: z
      .object({
        plugins: z.array(pluginId).min(1).max(200).optional(),
        tools: z
          .array(
            z
              .string()
              .max(300)
              .regex(/^[a-z0-9]+(-[a-z0-9]+)*\/[^/\s]+$/, 'expected "<pluginId>/<toolName>"'),
          )
          .min(1)
          .max(1000)
          .optional(),
      })
      .strict()
      .refine((r) => r.plugins !== undefined || r.tools !== undefined, 'name plugins or tools')
      .optional(),
  }),
  revokeApiKey: z.object({ keyId: z.string().min(1).max(64) }),
  orgPlugin: z.object({ organizationId: uuid, pluginId }),
  orgRef: z.object({ organizationId: uuid }),
  pluginRef: z.object({ pluginId }),
  logs: z.object({ pluginId, lines: z.number().int().min(1).max(200).default(200) }),
  enable: z.object({
    pluginId,
    configuration: configuration.default({}),
    /** Also enable missing dependencies (manifest `dependencies`), each with an empty configuration. */
    enableDependencies: z.boolean().default(false),
  }),
  configure: z.object({ pluginId, configuration }),
  invokeTool: toolCall,
  invokeToolsBatch: z.object({ calls: z.array(toolCall).min(1).max(LIMITS.batchCalls) }),
  audit: z.object({
    organizationId: uuid.optional(),
    pluginId: pluginId.optional(),
    action: z.string().max(64).optional(),
    outcome: z.enum(['ok', 'error', 'denied']).optional(),
    since: z.iso.datetime().optional(),
    until: z.iso.datetime().optional(),
    cursor: z.number().int().positive().optional(),
    limit: z.number().int().min(1).max(500).default(100),
  }),
};
