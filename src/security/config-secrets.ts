import { isDeepStrictEqual } from 'node:util';
import { ValidationError } from '../errors.js';
import type { ConfigField } from '../manifest/types.js';
import { isEncrypted, type SecretBox } from './secret-box.js';

export type ConfigSchema = Readonly<Record<string, ConfigField>>;
export type ConfigValue = string | number | boolean;
/** Plain, validated configuration values (secrets in clear text): never leaves the host process. */
export type ConfigValues = Record<string, ConfigValue>;
/** What is persisted: like ConfigValues but `encrypted: true` fields hold `enc:v1:` strings. */
export type StoredConfiguration = Record<string, ConfigValue>;
/** What the API may show: secrets replaced by whether they are set. */
export type MaskedConfiguration = Record<string, ConfigValue | { set: boolean }>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(obj: Readonly<Record<string, unknown>>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

/** The masked placeholder a UI may echo back for an unchanged secret. */
function isMaskEcho(v: unknown): boolean {
  return isPlainObject(v) && Object.keys(v).length === 1 && v.set === true;
}

function checkField(
  name: string,
  field: ConfigField,
  value: unknown,
  problems: string[],
): ConfigValue | undefined {
  const at = `configuration.${name}`;
  // values are stored as jsonb and handed to the plugin as environment variables: neither takes NUL
  if (typeof value === 'string' && value.includes('\u0000'))
    return void problems.push(`${at} must not contain NUL characters`);
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') return void problems.push(`${at} must be a string`);
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        return void problems.push(`${at} must be a finite number`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') return void problems.push(`${at} must be true or false`);
      return value;
    case 'url': {
      if (typeof value !== 'string') return void problems.push(`${at} must be a URL string`);
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return void problems.push(`${at} must be an absolute http(s) URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        return void problems.push(`${at} must be an http(s) URL (got ${url.protocol.slice(0, -1)})`);
      return value;
    }
    case 'select': {
      const options = field.options ?? [];
      if (typeof value !== 'string' || !options.includes(value))
        return void problems.push(`${at} must be one of: ${options.join(', ')}`);
      return value;
    }
  }
}

/**
 * Validates `input` against the manifest configSchema and returns plain values with defaults applied.
 * Rules: input is an object; fields not in the schema are rejected; a required field that is missing,
 * null or '' (without a default) is reported as required; types are exact (no string→number coercion);
 * `url` must be absolute http(s); `select` must be one of `options`; no string may contain NUL. Secret values
 * are never echoed.
 * `maxBytes` (config maxConfigurationBytes) bounds the JSON size of `input`, checked first.
 * Throws ValidationError('CONFIGURATION_INVALID') listing every problem, `; `-separated, each naming the
 * field as `configuration.<name>`.
 */
export function validateConfiguration(
  schema: ConfigSchema | undefined,
  input: unknown,
  options: { maxBytes?: number } = {},
): ConfigValues {
  const fields = schema ?? {};
  if (input === undefined || input === null) input = {};
  if (!isPlainObject(input))
    throw new ValidationError('CONFIGURATION_INVALID', 'configuration must be an object');
  if (options.maxBytes !== undefined) {
    const bytes = Buffer.byteLength(JSON.stringify(input), 'utf8');
    if (bytes > options.maxBytes)
      throw new ValidationError(
        'CONFIGURATION_INVALID',
        `configuration is ${bytes} bytes; the limit is ${options.maxBytes} bytes (HAY_MAX_CONFIGURATION_BYTES)`,
      );
  }
  const problems: string[] = [];
  for (const key of Object.keys(input))
    if (!own(fields, key)) {
      const known = Object.keys(fields);
      problems.push(
        `configuration.${key} is not a field of this plugin` +
          (known.length ? ` (fields: ${known.join(', ')})` : ' (it takes no configuration)'),
      );
    }
  const out: ConfigValues = {};
  for (const [name, field] of Object.entries(fields)) {
    let value = own(input, name) ? input[name] : undefined;
    if (value === null || (value === '' && field.required)) value = undefined;
    if (value === undefined) value = field.default;
    if (value === undefined) {
      if (field.required) problems.push(`configuration.${name} is required`);
      continue;
    }
    const checked = checkField(name, field, value, problems);
    if (checked !== undefined) out[name] = checked;
  }
  if (problems.length) throw new ValidationError('CONFIGURATION_INVALID', problems.join('; '));
  return out;
}

/**
 * Builds the input for a configure() call from the caller's `input` and the previous plain values:
 * an `encrypted` field that is omitted (or echoed back as the mask `{ set: true }`) keeps its previous
 * value; `null` clears it. Non-secret fields are taken from `input` only (configure replaces them).
 * Pure; the result still needs validateConfiguration.
 */
export function mergeConfigurationUpdate(
  schema: ConfigSchema | undefined,
  input: unknown,
  previous: Readonly<ConfigValues> | undefined,
): unknown {
  if (!isPlainObject(input)) return input;
  const merged: Record<string, unknown> = { ...input };
  for (const [name, field] of Object.entries(schema ?? {})) {
    if (!field.encrypted) continue;
    const given = own(input, name) ? input[name] : undefined;
    if (given !== undefined && !isMaskEcho(given)) continue;
    if (previous && own(previous, name)) merged[name] = previous[name];
    else delete merged[name];
  }
  return merged;
}

/** Stored form of validated values: every `encrypted` field becomes an `enc:v1:` string. */
export function sealConfiguration(
  schema: ConfigSchema | undefined,
  values: Readonly<ConfigValues>,
  box: SecretBox,
): StoredConfiguration {
  const out: StoredConfiguration = {};
  for (const [name, value] of Object.entries(values)) {
    out[name] = schema?.[name]?.encrypted ? box.encrypt(String(value)) : value;
  }
  return out;
}

function fromText(field: ConfigField, text: string): ConfigValue {
  if (field.type === 'number') return Number(text);
  if (field.type === 'boolean') return text === 'true';
  return text;
}

/**
 * Plain values from the stored form, for injecting into the plugin process. Only fields in `schema` are
 * returned (fields dropped from a newer manifest disappear). An `encrypted` field holding a non-`enc:v1:`
 * value (stored before the field was marked secret) is returned as-is. Throws SECRET_KEY_INVALID when a
 * ciphertext cannot be decrypted.
 */
export function openConfiguration(
  schema: ConfigSchema | undefined,
  stored: Readonly<Record<string, unknown>> | null | undefined,
  box: SecretBox,
): ConfigValues {
  const out: ConfigValues = {};
  if (!stored) return out;
  for (const [name, field] of Object.entries(schema ?? {})) {
    if (!own(stored, name)) continue;
    const raw = stored[name];
    if (isEncrypted(raw)) out[name] = fromText(field, box.decrypt(raw));
    else if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') out[name] = raw;
  }
  return out;
}

/**
 * API-safe view of the stored form: `encrypted` fields (and any value that is ciphertext) become
 * `{ set: true }` / `{ set: false }`; non-secret schema fields are shown; anything not in the schema
 * is left out. Never decrypts.
 */
export function maskConfiguration(
  schema: ConfigSchema | undefined,
  stored: Readonly<Record<string, unknown>> | null | undefined,
): MaskedConfiguration {
  const out: MaskedConfiguration = {};
  for (const [name, field] of Object.entries(schema ?? {})) {
    const raw = stored && own(stored, name) ? stored[name] : undefined;
    const present = raw !== undefined && raw !== null && raw !== '';
    if (field.encrypted || isEncrypted(raw)) out[name] = { set: present };
    else if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') out[name] = raw;
  }
  return out;
}

/**
 * Names (sorted) of fields whose plain value differs between `before` and `after`: schema fields plus
 * any extra key present on either side. Names only, so it is safe for the audit log.
 */
export function changedFields(
  schema: ConfigSchema | undefined,
  before: Readonly<Record<string, unknown>> | null | undefined,
  after: Readonly<Record<string, unknown>> | null | undefined,
): string[] {
  const b = before ?? {};
  const a = after ?? {};
  const names = new Set([...Object.keys(schema ?? {}), ...Object.keys(b), ...Object.keys(a)]);
  return [...names].filter((n) => !isDeepStrictEqual(b[n], a[n])).sort();
}

/**
 * One configure() update end to end: merge kept secrets from `previousStored`, validate, seal.
 * Returns the new stored form, the plain values and the changed field names. Throws like
 * validateConfiguration / SecretBox.decrypt.
 */
export function applyConfigurationUpdate(
  schema: ConfigSchema | undefined,
  input: unknown,
  previousStored: Readonly<Record<string, unknown>> | null | undefined,
  box: SecretBox,
  options: { maxBytes?: number } = {},
): { stored: StoredConfiguration; values: ConfigValues; changed: string[] } {
  const previous = openConfiguration(schema, previousStored, box);
  const values = validateConfiguration(schema, mergeConfigurationUpdate(schema, input, previous), options);
  return {
    stored: sealConfiguration(schema, values, box),
    values,
    changed: changedFields(schema, previous, values),
  };
}

/** Plain secret strings in `values` (the `encrypted` fields), e.g. to feed redactSecrets. */
export function secretValues(schema: ConfigSchema | undefined, values: Readonly<ConfigValues>): string[] {
  const out: string[] = [];
  for (const [name, field] of Object.entries(schema ?? {})) {
    const v = values[name];
    if (field.encrypted && v !== undefined && String(v) !== '') out.push(String(v));
  }
  return out;
}

export const REDACTED = '[REDACTED]';

/**
 * Replaces every occurrence of each known secret in `text` with [REDACTED], also in its URL-encoded
 * and JSON-escaped forms. Longer secrets are replaced first so a secret containing another is fully
 * hidden. Empty secrets are ignored.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (!s) continue;
    forms.add(s);
    forms.add(encodeURIComponent(s));
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  let out = text;
  for (const f of [...forms].sort((x, y) => y.length - x.length)) out = out.split(f).join(REDACTED);
  return out;
}
