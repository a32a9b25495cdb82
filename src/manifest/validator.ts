import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ConfigError, ManifestError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { findJsonSyntaxProblem } from './json-syntax.js';
import { isDraft2020, pluginSchemaAjv, unsupportedPatternIn } from './linear-regexp.js';
import { semanticProblems, type RuntimeCeilings } from './semantic-checks.js';
import type { HayPluginManifest } from './types.js';

const addFormats = addFormatsModule.default;
const DRAFT_2020_12 = 'https://json-schema.org/draft/2020-12/schema';

/** Where the manifest schema lives inside a plugins folder (HostConfig.pluginsDir). */
export function manifestSchemaPath(pluginsDir: string): string {
  return path.join(pluginsDir, 'base', 'plugin-manifest.schema.json');
}

/**
 * Validates plugin manifests against the JSON schema plus the rules a schema cannot express
 * (src/manifest/semantic-checks.ts). The schema is read and compiled once, in the constructor; an
 * unreadable or uncompilable schema throws ConfigError naming the schema.
 *
 * Every problem is one string `<file>: <JSON pointer> <rule>`, with "/" as the root pointer, e.g.
 * `plugins/core/x/manifest.json: /capabilities/mcp/transport must match pattern "..."`. All schema
 * problems are reported together; the semantic rules run (and are reported together) only once the
 * schema passes. Validation never modifies its input.
 */
export class ManifestValidator {
  private readonly check: ValidateFunction<HayPluginManifest>;
  /** For tool input schemas (tenant-supplied): patterns must run on the linear-time engine. */
  private readonly pluginAjv = { d07: pluginSchemaAjv(false), d2020: pluginSchemaAjv(true) };

  /**
   * `schema`: path to a JSON schema file, or the parsed schema object. `ceilings`: the operator's
   * limits for `runtime` settings (unset: none).
   */
  constructor(
    schema: string | Record<string, unknown>,
    private readonly ceilings?: RuntimeCeilings,
  ) {
    const schemaObject = typeof schema === 'string' ? readSchemaFile(schema) : schema;
    const options: Options = {
      allErrors: true,
      strict: true,
      strictRequired: false,
      allowUnionTypes: true,
      verbose: true,
      // the schema this package ships is checked against its meta-schema by a test, not at each start
      // (compiling the draft 2020-12 meta-schema is about half of the compile); any other is checked here
      validateSchema: !isBundledSchema(schema),
    };
    const ajv = schemaObject['$schema'] === DRAFT_2020_12 ? new Ajv2020(options) : new Ajv(options);
    addFormats(ajv);
    try {
      this.check = ajv.compile<HayPluginManifest>(schemaObject);
    } catch (err) {
      const name = typeof schema === 'string' ? schema : 'manifest schema';
      throw new ConfigError(`${name}: cannot compile the manifest schema: ${errorText(err)}`);
    }
  }

  /** Returns `raw` itself, typed, when valid; throws ManifestError listing the problems otherwise. */
  validate(raw: unknown, file: string): HayPluginManifest {
    if (!this.check(raw)) {
      throw new ManifestError(formatAjvErrors(this.check.errors ?? [], file));
    }
    const problems = semanticProblems(raw, this.ceilings);
    (raw.capabilities?.mcp?.tools ?? []).forEach((tool, index) => {
      const schema = tool.input_schema;
      if (schema === undefined) return;
      const ajv = isDraft2020(schema) ? this.pluginAjv.d2020 : this.pluginAjv.d07;
      const problem = unsupportedPatternIn(schema, ajv);
      if (problem !== undefined)
        problems.push({
          pointer: `/capabilities/mcp/tools/${index}/input_schema`,
          rule: `uses a ${problem}`,
        });
    });
    if (problems.length > 0) {
      throw new ManifestError(problems.map((p) => `${file}: ${p.pointer} ${p.rule}`));
    }
    return raw;
  }

  /** Parses manifest.json text (a leading BOM is ignored) and validates it; invalid JSON names line/column. */
  parse(text: string, file: string): HayPluginManifest {
    const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
    let raw: unknown;
    try {
      raw = JSON.parse(body);
    } catch (err) {
      const where = findJsonSyntaxProblem(body);
      const detail = where
        ? `line ${where.line}, column ${where.column} (offset ${where.offset}): ${where.reason}`
        : errorText(err);
      throw new ManifestError([`${file}: invalid JSON at ${detail}`]);
    }
    return this.validate(raw, file);
  }
}

/** True when `schema` is a path to a file with exactly the text of the package's own manifest schema. */
function isBundledSchema(schema: string | Record<string, unknown>): boolean {
  if (typeof schema !== 'string') return false;
  try {
    const bundled = manifestSchemaPath(path.join(packageRoot(), 'plugins'));
    if (path.resolve(schema) === bundled) return true;
    return readFileSync(schema, 'utf8') === readFileSync(bundled, 'utf8');
  } catch {
    return false;
  }
}

function readSchemaFile(schemaPath: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(schemaPath, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${schemaPath}: cannot load the manifest schema: ${errorText(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${schemaPath}: the manifest schema must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Turns ajv errors into `<file>: <pointer> <rule>` lines, dropping duplicates and if/then wrappers. */
export function formatAjvErrors(errors: readonly ErrorObject[], file: string): string[] {
  const lines: string[] = [];
  for (const err of errors) {
    const line = formatAjvError(err);
    if (line === undefined) continue;
    const full = `${file}: ${line}`;
    if (!lines.includes(full)) lines.push(full);
  }
  if (lines.length === 0) lines.push(`${file}: / does not match the manifest schema`);
  return lines;
}

function formatAjvError(err: ErrorObject): string | undefined {
  const pointer = err.instancePath === '' ? '/' : err.instancePath;
  const params = err.params as Record<string, unknown>;
  if (err.propertyName !== undefined) {
    return `${pointer} has invalid property name ${JSON.stringify(err.propertyName)}: ${err.message ?? 'is invalid'}`;
  }
  switch (err.keyword) {
    case 'if':
    case 'propertyNames':
      // Wrappers: the specific error (then/required, the name rule) is reported on its own.
      return undefined;
    case 'additionalProperties':
      return `${pointer} has unknown property ${JSON.stringify(params['additionalProperty'])}`;
    case 'required': {
      const hint = err.schemaPath.endsWith('/then/required') ? conditionHint(err.parentSchema) : '';
      return `${pointer} is missing required property ${JSON.stringify(params['missingProperty'])}${hint}`;
    }
    case 'enum': {
      const allowed = Array.isArray(params['allowedValues']) ? params['allowedValues'] : [];
      return `${pointer} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')} (got ${JSON.stringify(err.data)})`;
    }
    case 'uniqueItems': {
      const [a, b] = [Number(params['i']), Number(params['j'])].sort((x, y) => x - y);
      return `${pointer} must not contain duplicates (items ${a} and ${b} are equal)`;
    }
    default:
      return `${pointer} ${err.message ?? `fails rule "${err.keyword}"`}`;
  }
}

function conditionHint(parentSchema: unknown): string {
  if (typeof parentSchema !== 'object' || parentSchema === null) return '';
  const description = (parentSchema as { description?: unknown }).description;
  return typeof description === 'string' ? ` (${description})` : '';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
