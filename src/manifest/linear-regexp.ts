import { Ajv, type Options } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { RE2JS } from 're2js';

const addFormats = addFormatsModule.default;

/** A plugin schema's `pattern` the linear-time engine cannot run (lookaround, backreferences, ...). */
export class UnsupportedPatternError extends Error {
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(
      `pattern ${JSON.stringify(pattern.slice(0, 200))} is not supported by the host's linear-time regex engine (RE2 syntax: no lookahead, lookbehind or backreferences): ${reason}`,
    );
    this.name = 'UnsupportedPatternError';
  }
}

/**
 * Ajv's `code.regExp` engine for tenant-supplied schemas: RE2 (re2js, pure JS), whose matching time is
 * linear in the input, so no `pattern` / `patternProperties` can stall the event loop (`^(a+)+$` on 40
 * characters takes as long as any other 40-character match). Unsupported syntax throws
 * UnsupportedPatternError at compile time.
 */
export const linearRegExp: RegExpEngine = Object.assign(
  (pattern: string): { test: (s: string) => boolean; toString: () => string } => {
    let re: RE2JS;
    try {
      re = RE2JS.compile(pattern);
    } catch (err) {
      throw new UnsupportedPatternError(pattern, err instanceof Error ? err.message : String(err));
    }
    // Ajv keys compiled patterns by toString(): it must be unique per pattern
    return { test: (s: string) => re.test(s), toString: () => `re2:${pattern}` };
  },
  { code: 'linearRegExp' },
);

/**
 * An Ajv (draft-07 or 2020-12) for schemas that come from plugins (tool input schemas): linear-time
 * patterns, formats, lenient about unknown keywords.
 */
export function pluginSchemaAjv(is2020: boolean): Ajv {
  const opts: Options = {
    allErrors: true,
    strict: false,
    validateSchema: false,
    addUsedSchema: false,
    code: { regExp: linearRegExp },
  };
  const ajv = is2020 ? new Ajv2020(opts) : new Ajv(opts);
  addFormats(ajv);
  return ajv;
}

/** Whether a plugin schema declares draft 2020-12. */
export function isDraft2020(schema: Record<string, unknown>): boolean {
  return typeof schema.$schema === 'string' && schema.$schema.includes('2020-12');
}

/**
 * Compiles `schema` with the linear engine and returns the unsupported pattern's message, if any
 * (other compile problems are not reported here: the server validates its own schema).
 */
export function unsupportedPatternIn(schema: Record<string, unknown>, ajv: Ajv): string | undefined {
  try {
    ajv.compile(schema);
    return undefined;
  } catch (err) {
    return err instanceof UnsupportedPatternError ? err.message : undefined;
  }
}
