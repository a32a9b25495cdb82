import type { ErrorObject, ValidateFunction } from 'ajv';
import { PreconditionError, ToolOutputError, ValidationError } from '../errors.js';
import { isDraft2020, pluginSchemaAjv, UnsupportedPatternError } from '../manifest/linear-regexp.js';

/**
 * Validates tool arguments against the tool's input schema, and a result's structuredContent against the
 * tool's output schema. Validators are compiled once per schema text and reused by every (organization,
 * plugin version, tool) with that schema; both maps are bounded.
 * Patterns run on a linear-time engine (src/manifest/linear-regexp.ts): a plugin's schema cannot stall
 * the event loop; a schema whose pattern that engine cannot run refuses calls with PLUGIN_NOT_READY.
 */
export class ToolArgumentValidator {
  private readonly ajv07 = pluginSchemaAjv(false);
  private readonly ajv2020 = pluginSchemaAjv(true);
  private readonly cache = new Map<string, ValidateFunction | Error>();
  private readonly bySchema = new Map<string, ValidateFunction | Error>();

  constructor(private readonly maxEntries = 5_000) {}

  /** Throws ValidationError('ARGUMENTS_INVALID') naming the JSON path and the rule. */
  validate(
    versionKey: string,
    toolName: string,
    schema: Record<string, unknown> | undefined,
    args: unknown,
  ): void {
    if (schema === undefined) return;
    const entry = this.validatorFor(`${versionKey}\u0000${toolName}`, schema);
    if (entry instanceof UnsupportedPatternError)
      throw new PreconditionError(
        'PLUGIN_NOT_READY',
        `tool ${toolName} cannot be called: its input schema uses a ${entry.message}`,
      );
    if (entry instanceof Error) return; // an uncompilable server schema is the server's problem; it validates itself
    if (!entry(args)) {
      throw new ValidationError(
        'ARGUMENTS_INVALID',
        `invalid arguments for tool ${toolName}: ${formatErrors(entry.errors ?? [])}`,
      );
    }
  }

  /**
   * The MCP client's check of a result (MCP 2025-06-18 and later): a successful result of a tool with an
   * output schema carries structuredContent matching it. Throws ToolOutputError naming the plugin, the tool
   * and the paths. Results with `isError` are not checked; a schema Ajv cannot compile (or whose pattern
   * the linear engine cannot run) checks nothing.
   */
  validateOutput(
    versionKey: string,
    pluginId: string,
    toolName: string,
    schema: Record<string, unknown> | undefined,
    result: { isError?: boolean | undefined; structuredContent?: unknown },
  ): void {
    if (schema === undefined || result.isError === true) return;
    if (result.structuredContent === undefined)
      throw new ToolOutputError(
        `plugin ${pluginId} tool ${toolName} declares an outputSchema but returned no structuredContent`,
      );
    const entry = this.validatorFor(`${versionKey}\u0000${toolName}\u0000output`, schema);
    if (entry instanceof Error) return;
    if (!entry(result.structuredContent))
      throw new ToolOutputError(
        `plugin ${pluginId} tool ${toolName} returned structuredContent that does not match its outputSchema: ${formatErrors(entry.errors ?? [])}`,
      );
  }

  private validatorFor(key: string, schema: Record<string, unknown>): ValidateFunction | Error {
    let entry = this.cache.get(key);
    if (entry === undefined) {
      // compiled code depends only on the schema text: organizations of one plugin version share it
      const text = JSON.stringify(schema);
      entry = this.bySchema.get(text);
      if (entry === undefined) {
        entry = this.compile(schema);
        if (this.bySchema.size >= this.maxEntries)
          this.bySchema.delete(this.bySchema.keys().next().value as string);
        this.bySchema.set(text, entry);
      }
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, entry);
    }
    return entry;
  }

  /** Drops validators of one plugin version (e.g. after tools/list_changed). */
  forget(versionKey: string): void {
    const prefix = `${versionKey}\u0000`;
    for (const key of [...this.cache.keys()]) if (key.startsWith(prefix)) this.cache.delete(key);
  }

  private compile(schema: Record<string, unknown>): ValidateFunction | Error {
    const is2020 = isDraft2020(schema);
    try {
      return (is2020 ? this.ajv2020 : this.ajv07).compile(schema);
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }
}

function formatErrors(errors: readonly ErrorObject[]): string {
  return errors
    .slice(0, 5)
    .map((e) => {
      const at = e.instancePath === '' ? '/' : e.instancePath;
      if (e.keyword === 'required')
        return `${at} must have required property "${String(e.params.missingProperty)}"`;
      if (e.keyword === 'additionalProperties')
        return `${at} has unknown property "${String(e.params.additionalProperty)}"`;
      return `${at} ${e.message ?? e.keyword}`;
    })
    .join('; ');
}
