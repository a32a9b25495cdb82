// Part of the no-code runtime (see template.ts): imports nothing from the host outside src/builder.
import { z } from 'zod';
import { parseTemplate, type TemplatePart } from './template.js';

/** Bounds of a no-code plugin definition (docs/PLUGIN_API.md, "No-code HTTP plugins"). */
export const DEFINITION_LIMITS = {
  definitionBytes: 256 * 1024,
  tools: 50,
  configFields: 30,
  parameters: 30,
  enumValues: 100,
  headers: 20,
  queryEntries: 30,
  formFields: 30,
  urlTemplateChars: 2000,
  headerTemplateChars: 2000,
  queryTemplateChars: 1000,
  textBodyChars: 64 * 1024,
  jsonBodyBytes: 64 * 1024,
  jsonBodyDepth: 10,
  descriptionChars: 2000,
  /** Largest response body a tool reads (the per-tool `response.maxBytes` default is 256 KiB). */
  responseBytes: 1024 * 1024,
  defaultResponseBytes: 256 * 1024,
  /** Per-tool request timeout bound and default. */
  timeoutMs: 30_000,
  defaultTimeoutMs: 10_000,
  /** Rendered request bounds (checked per call). */
  renderedUrlChars: 8192,
  renderedHeaderBytes: 16 * 1024,
  renderedBodyBytes: 1024 * 1024,
} as const;

/** The file in a no-code plugin's folder that holds its definition. */
export const DEFINITION_FILE = 'hay-no-code.json';
/** Current definition format; the runtime refuses others. */
export const DEFINITION_FORMAT = 1;

const L = DEFINITION_LIMITS;
const identifier = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must start with a letter or _ and hold only letters, digits and _');
const description = z.string().max(L.descriptionChars);

const configField = z.strictObject({
  name: identifier,
  type: z.enum(['string', 'number', 'boolean', 'url']),
  label: z.string().min(1).max(200).optional(),
  description: description.optional(),
  required: z.boolean().optional(),
  /** Stored encrypted and never returned by the API (use it for API keys and tokens). */
  encrypted: z.boolean().optional(),
});

const parameter = z.strictObject({
  name: identifier,
  type: z.enum(['string', 'number', 'integer', 'boolean']),
  description: description.optional(),
  required: z.boolean().optional(),
  enum: z
    .array(z.union([z.string().max(500), z.number()]))
    .min(1)
    .max(L.enumValues)
    .optional(),
});

const headerName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name (a token)');

/** Headers the runtime sets itself or that would change how the request is framed or routed. */
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
]);

const body = z.discriminatedUnion('kind', [
  /** JSON: strings inside are templates; a string that is exactly one reference takes the value's type. */
  z.strictObject({ kind: z.literal('json'), value: z.unknown() }),
  z.strictObject({
    kind: z.literal('text'),
    template: z.string().max(L.textBodyChars),
    contentType: z.string().min(1).max(200).optional(),
  }),
  z.strictObject({
    kind: z.literal('form'),
    fields: z.record(z.string().min(1).max(200), z.string().max(L.queryTemplateChars)),
  }),
]);

const tool = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/, 'must hold only letters, digits, _ and -'),
  description: description.min(1),
  parameters: z.array(parameter).max(L.parameters).default([]),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
  url: z.string().min(1).max(L.urlTemplateChars),
  query: z.record(z.string().min(1).max(200), z.string().max(L.queryTemplateChars)).optional(),
  headers: z.record(headerName, z.string().max(L.headerTemplateChars)).optional(),
  body: body.optional(),
  response: z
    .strictObject({
      /** `text`: the body as text; `json`: parsed, returned as structured content (and as JSON text). */
      kind: z.enum(['text', 'json']).default('text'),
      maxBytes: z.number().int().min(1).max(L.responseBytes).optional(),
      /** RFC 6901 pointer into a JSON response: only that part is returned. */
      pointer: z
        .string()
        .max(500)
        .regex(/^(\/([^~]|~[01])*)*$/, 'must be a JSON pointer such as /data/items')
        .optional(),
    })
    .default({ kind: 'text' }),
  timeoutMs: z.number().int().min(100).max(L.timeoutMs).optional(),
});

export const definitionSchema = z.strictObject({
  format: z.literal(DEFINITION_FORMAT).default(DEFINITION_FORMAT),
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'must be a plugin id (lowercase letters, digits, hyphens)'),
  name: z.string().trim().min(1).max(100),
  description: description.min(1),
  config: z.array(configField).max(L.configFields).default([]),
  tools: z.array(tool).min(1).max(L.tools),
});

/** A definition as sent (defaults not applied yet). */
export type DefinitionInput = z.input<typeof definitionSchema>;
/** A validated definition, defaults applied. */
export type Definition = z.output<typeof definitionSchema>;
export type ToolDefinition = Definition['tools'][number];
export type ConfigField = Definition['config'][number];
export type ParameterDefinition = ToolDefinition['parameters'][number];

/** One problem of a definition: where (RFC 6901 pointer into the definition) and what. */
export interface DefinitionProblem {
  pointer: string;
  message: string;
}

export type DefinitionResult =
  { ok: true; definition: Definition } | { ok: false; problems: DefinitionProblem[] };

export function pointerOf(path: readonly PropertyKey[]): string {
  return path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/**
 * Validates a definition: its size, the schema, then the rules the schema cannot state (unique names,
 * every reference names an existing field or parameter, URL templates fix their origin, forbidden
 * headers). Every problem names its JSON pointer.
 */
export function validateDefinition(raw: unknown): DefinitionResult {
  const size = Buffer.byteLength(JSON.stringify(raw) ?? '');
  if (size > L.definitionBytes)
    return {
      ok: false,
      problems: [{ pointer: '', message: `is ${size} bytes of JSON; the limit is ${L.definitionBytes}` }],
    };
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success)
    return {
      ok: false,
      problems: parsed.error.issues
        .slice(0, 50)
        .map((i) => ({ pointer: pointerOf(i.path), message: i.message })),
    };
  const problems = semanticProblems(parsed.data);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, definition: parsed.data };
}

function semanticProblems(def: Definition): DefinitionProblem[] {
  const problems: DefinitionProblem[] = [];
  const add = (pointer: string, message: string) => problems.push({ pointer, message });
  const configByName = new Map<string, ConfigField>();
  def.config.forEach((f, i) => {
    const clash = [...configByName.keys()].find((n) => envNameOf(n) === envNameOf(f.name));
    if (clash !== undefined)
      add(
        `/config/${i}/name`,
        `"${f.name}" duplicates configuration field "${clash}" (names are case-insensitive)`,
      );
    configByName.set(f.name, f);
  });
  const toolNames = new Set<string>();
  def.tools.forEach((t, ti) => {
    const base = `/tools/${ti}`;
    if (toolNames.has(t.name)) add(`${base}/name`, `duplicates tool "${t.name}"`);
    toolNames.add(t.name);
    const params = new Map<string, ParameterDefinition>();
    t.parameters.forEach((p, pi) => {
      if (params.has(p.name)) add(`${base}/parameters/${pi}/name`, `duplicates parameter "${p.name}"`);
      params.set(p.name, p);
      p.enum?.forEach((v, vi) => {
        const ok =
          p.type === 'string'
            ? typeof v === 'string'
            : p.type === 'boolean'
              ? false
              : typeof v === 'number' && (p.type === 'number' || Number.isInteger(v));
        if (!ok) add(`${base}/parameters/${pi}/enum/${vi}`, `is not a ${p.type}`);
      });
    });
    const check = (pointer: string, text: string): TemplatePart[] | undefined => {
      let parts: TemplatePart[];
      try {
        parts = parseTemplate(text);
      } catch (err) {
        add(pointer, (err as Error).message);
        return undefined;
      }
      for (const p of parts) {
        if (p.kind !== 'ref') continue;
        if (p.scope === 'config' && !configByName.has(p.name))
          add(pointer, `references {{config.${p.name}}}, but there is no configuration field "${p.name}"`);
        if (p.scope === 'params' && !params.has(p.name))
          add(pointer, `references {{params.${p.name}}}, but tool "${t.name}" has no parameter "${p.name}"`);
      }
      return parts;
    };
    const urlParts = check(`${base}/url`, t.url);
    if (urlParts) {
      const problem = urlTemplateProblem(urlParts, configByName);
      if (problem) add(`${base}/url`, problem);
    }
    for (const [k, v] of Object.entries(t.query ?? {})) check(`${base}/query/${escapeKey(k)}`, v);
    if (Object.keys(t.query ?? {}).length > L.queryEntries)
      add(`${base}/query`, `has more than ${L.queryEntries} entries`);
    const headers = Object.entries(t.headers ?? {});
    if (headers.length > L.headers) add(`${base}/headers`, `has more than ${L.headers} headers`);
    const seenHeaders = new Set<string>();
    for (const [k, v] of headers) {
      const lower = k.toLowerCase();
      if (FORBIDDEN_HEADERS.has(lower))
        add(`${base}/headers/${escapeKey(k)}`, `the header ${k} is set by the runtime`);
      if (seenHeaders.has(lower)) add(`${base}/headers/${escapeKey(k)}`, `duplicates header ${k}`);
      seenHeaders.add(lower);
      if (/[\r\n\0]/.test(v)) add(`${base}/headers/${escapeKey(k)}`, 'contains a line break or NUL');
      check(`${base}/headers/${escapeKey(k)}`, v);
    }
    const b = t.body;
    if (b && t.method === 'GET') add(`${base}/body`, 'a GET request has no body');
    if (b?.kind === 'text') check(`${base}/body/template`, b.template);
    if (b?.kind === 'form') {
      if (Object.keys(b.fields).length > L.formFields)
        add(`${base}/body/fields`, `has more than ${L.formFields} fields`);
      for (const [k, v] of Object.entries(b.fields)) check(`${base}/body/fields/${escapeKey(k)}`, v);
    }
    if (b?.kind === 'json') {
      const size = Buffer.byteLength(JSON.stringify(b.value) ?? '');
      if (b.value === undefined) add(`${base}/body/value`, 'is required');
      else if (size > L.jsonBodyBytes)
        add(`${base}/body/value`, `is ${size} bytes of JSON; the limit is ${L.jsonBodyBytes}`);
      else walkJson(b.value, `${base}/body/value`, 0, (pointer, text) => check(pointer, text), add);
    }
  });
  return problems.slice(0, 50);
}

/**
 * A URL template must fix its origin: it starts with a literal `http(s)://host[:port]` (no reference
 * before the path), or with a reference to a `url` configuration field followed by `/`, `?` or nothing.
 * Parameters never reach the origin.
 */
function urlTemplateProblem(
  parts: readonly TemplatePart[],
  config: Map<string, ConfigField>,
): string | undefined {
  const first = parts[0];
  if (!first) return 'is empty';
  if (first.kind === 'ref') {
    if (first.scope !== 'config' || config.get(first.name)?.type !== 'url')
      return 'must start with http:// or https:// and a host, or with a {{config.<name>}} field of type url';
    const next = parts[1];
    if (next && !(next.kind === 'text' && /^[/?]/.test(next.text)))
      return `{{config.${first.name}}} must be followed by "/", "?" or nothing`;
    return undefined;
  }
  const m = /^(https?):\/\/([^/?#]*)/i.exec(first.text);
  if (!m)
    return 'must start with http:// or https:// and a host, or with a {{config.<name>}} field of type url';
  const authority = m[2] ?? '';
  if (authority === '' || (m[0].length === first.text.length && parts.length > 1))
    return 'the host part of the URL must be literal (references are allowed in the path and query only)';
  if (authority.includes('@')) return 'must not carry credentials in the URL (use a header)';
  try {
    new URL(`${m[1]}://${authority}/`);
  } catch {
    return `has an invalid host "${authority}"`;
  }
  return undefined;
}

function walkJson(
  value: unknown,
  pointer: string,
  depth: number,
  onString: (pointer: string, text: string) => void,
  add: (pointer: string, message: string) => void,
): void {
  if (depth > L.jsonBodyDepth) {
    add(pointer, `nests deeper than ${L.jsonBodyDepth} levels`);
    return;
  }
  if (typeof value === 'string') onString(pointer, value);
  else if (Array.isArray(value))
    value.forEach((v, i) => walkJson(v, `${pointer}/${i}`, depth + 1, onString, add));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('{{')) add(`${pointer}/${escapeKey(k)}`, 'references are not allowed in object keys');
      walkJson(v, `${pointer}/${escapeKey(k)}`, depth + 1, onString, add);
    }
}

function escapeKey(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The environment variable that carries configuration field `name` to the runtime. */
export function envNameOf(name: string): string {
  return `NOCODE_CFG_${name.toUpperCase()}`;
}

/** The tool's MCP `inputSchema` (JSON Schema, no additional properties). */
export function inputSchemaOf(t: ToolDefinition): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const p of t.parameters) {
    properties[p.name] = {
      type: p.type,
      ...(p.description ? { description: p.description } : {}),
      ...(p.enum ? { enum: p.enum } : {}),
    };
  }
  const required = t.parameters.filter((p) => p.required).map((p) => p.name);
  return {
    type: 'object',
    properties,
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
}
