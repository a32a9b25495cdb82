// Part of the no-code runtime. Its compiled folder (dist/src/builder) is all of the host a tenant sandbox
// sees, so engine/ and runtime/ import nothing outside engine/ and runtime/ except npm packages the host
// ships (test/unit/builder-definition.test.ts checks).

/** One piece of a parsed template: literal text or a reference to a configuration field or parameter. */
export type TemplatePart =
  { kind: 'text'; text: string } | { kind: 'ref'; scope: 'config' | 'params'; name: string };

const REF = /^(config|params)\.([A-Za-z_][A-Za-z0-9_]*)$/;

/**
 * Parses `text` with `{{config.name}}` / `{{params.name}}` references (spaces inside the braces are
 * allowed). Throws an Error naming the offset of the first malformed reference (`{{` without `}}`, or
 * anything other than `config.<name>` / `params.<name>` inside). There is no escape for a literal `{{`.
 */
export function parseTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    if (open === -1) {
      parts.push({ kind: 'text', text: text.slice(i) });
      break;
    }
    if (open > i) parts.push({ kind: 'text', text: text.slice(i, open) });
    const close = text.indexOf('}}', open + 2);
    if (close === -1) throw new Error(`"{{" at offset ${open} has no closing "}}"`);
    const inner = text.slice(open + 2, close).trim();
    const m = REF.exec(inner);
    if (!m)
      throw new Error(
        `reference at offset ${open} must be {{config.<name>}} or {{params.<name>}} (got ${JSON.stringify(inner.slice(0, 80))})`,
      );
    parts.push({ kind: 'ref', scope: m[1] as 'config' | 'params', name: m[2] ?? '' });
    i = close + 2;
  }
  return parts;
}

/** The references of a template (parse errors propagate). */
export function referencesOf(text: string): { scope: 'config' | 'params'; name: string }[] {
  return parseTemplate(text).flatMap((p) => (p.kind === 'ref' ? [{ scope: p.scope, name: p.name }] : []));
}

/** The values a template is rendered with: configuration fields and tool parameters (absent = undefined). */
export interface TemplateValues {
  config: Readonly<Record<string, unknown>>;
  params: Readonly<Record<string, unknown>>;
}

/** A value a reference resolves to, or undefined when the field or parameter was not given. */
export function lookup(values: TemplateValues, part: { scope: 'config' | 'params'; name: string }): unknown {
  const source = values[part.scope];
  return Object.prototype.hasOwnProperty.call(source, part.name) ? source[part.name] : undefined;
}

/** Text of a scalar value; objects and arrays as JSON. */
export function scalarText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * Renders `parts`, passing each referenced value through `encode`. Single pass: a value that itself
 * contains `{{...}}` is inserted as text, never expanded.
 */
export function renderParts(
  parts: readonly TemplatePart[],
  values: TemplateValues,
  encode: (text: string) => string,
): string {
  let out = '';
  for (const p of parts) out += p.kind === 'text' ? p.text : encode(scalarText(lookup(values, p)));
  return out;
}

/** True when some parameter the template references was not given. */
export function missesParam(parts: readonly TemplatePart[], values: TemplateValues): boolean {
  return parts.some((p) => p.kind === 'ref' && p.scope === 'params' && lookup(values, p) === undefined);
}

/**
 * A value inserted into a URL path or query: percent-encoded, so it cannot add `/`, `?`, `#`, `@` or `:`
 * (rendering still refuses a result whose path has a `.`/`..` segment: URL parsers resolve `%2e` too).
 */
export function encodeUrlValue(text: string): string {
  return encodeURIComponent(text);
}
