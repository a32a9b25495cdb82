import { useState } from 'preact/hooks';

/** The subset of JSON Schema the tool form understands; anything else is edited as JSON text. */
interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
}

function asSchema(v: unknown): JsonSchema {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as JsonSchema) : {};
}

function typeOf(s: JsonSchema): string {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  return typeof t === 'string' ? t : 'json';
}

type Raw = Record<string, string | boolean>;

function initial(props: Record<string, JsonSchema>): Raw {
  const out: Raw = {};
  for (const [name, s] of Object.entries(props)) {
    const t = typeOf(s);
    if (t === 'boolean') out[name] = s.default === true;
    else if (s.default !== undefined)
      out[name] =
        t === 'string' || t === 'number' || t === 'integer' ? String(s.default) : JSON.stringify(s.default);
    else out[name] = '';
  }
  return out;
}

/** The arguments object from the form's raw values; throws naming the field on bad JSON or numbers. */
function argumentsOf(props: Record<string, JsonSchema>, raw: Raw): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(props)) {
    const v = raw[name];
    const t = typeOf(s);
    if (t === 'boolean') {
      out[name] = v === true;
      continue;
    }
    if (typeof v !== 'string' || v === '') continue;
    if (t === 'string') out[name] = v;
    else if (t === 'number' || t === 'integer') {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`${name}: not a number`);
      out[name] = n;
    } else {
      try {
        out[name] = JSON.parse(v) as unknown;
      } catch {
        throw new Error(`${name}: not valid JSON`);
      }
    }
  }
  return out;
}

/**
 * A form generated from a tool's input schema (untrusted: every string is rendered as text). Strings,
 * numbers, integers, booleans and enums get their own inputs; arrays and objects a JSON text area.
 */
export function SchemaForm(props: {
  idPrefix: string;
  schema: unknown;
  submitLabel: string;
  busy?: boolean;
  onSubmit: (args: Record<string, unknown>) => void;
}) {
  const schema = asSchema(props.schema);
  const properties: Record<string, JsonSchema> = {};
  for (const [k, v] of Object.entries(schema.properties ?? {})) properties[k] = asSchema(v);
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const [raw, setRaw] = useState<Raw>(() => initial(properties));
  const [problem, setProblem] = useState<string | null>(null);
  const set = (name: string, v: string | boolean) => setRaw({ ...raw, [name]: v });
  return (
    <form
      class="schema-form"
      onSubmit={(e) => {
        e.preventDefault();
        try {
          setProblem(null);
          props.onSubmit(argumentsOf(properties, raw));
        } catch (err) {
          setProblem(err instanceof Error ? err.message : String(err));
        }
      }}
    >
      {Object.keys(properties).length === 0 && <p class="muted">This tool takes no arguments.</p>}
      {Object.entries(properties).map(([name, s]) => {
        const id = `${props.idPrefix}-${name}`;
        const t = typeOf(s);
        const label = (
          <label for={id}>
            {s.title ?? name}
            {required.has(name) && <span class="required"> (required)</span>}
            <span class="muted"> {t}</span>
          </label>
        );
        const help = s.description ? (
          <p class="help" id={`${id}-help`}>
            {s.description}
          </p>
        ) : null;
        const describedBy = s.description ? `${id}-help` : undefined;
        if (t === 'boolean')
          return (
            <div class="field checkbox" key={name}>
              <input
                id={id}
                type="checkbox"
                checked={raw[name] === true}
                aria-describedby={describedBy}
                onChange={(e) => set(name, e.currentTarget.checked)}
              />
              {label}
              {help}
            </div>
          );
        if (Array.isArray(s.enum))
          return (
            <div class="field" key={name}>
              {label}
              <select
                id={id}
                value={String(raw[name] ?? '')}
                required={required.has(name)}
                aria-describedby={describedBy}
                onChange={(e) => set(name, e.currentTarget.value)}
              >
                <option value="">(none)</option>
                {s.enum.map((o) => (
                  <option key={String(o)} value={String(o)}>
                    {String(o)}
                  </option>
                ))}
              </select>
              {help}
            </div>
          );
        if (t === 'string' || t === 'number' || t === 'integer')
          return (
            <div class="field" key={name}>
              {label}
              <input
                id={id}
                type={t === 'string' ? 'text' : 'number'}
                step={t === 'integer' ? 1 : 'any'}
                value={String(raw[name] ?? '')}
                required={required.has(name)}
                aria-describedby={describedBy}
                onInput={(e) => set(name, e.currentTarget.value)}
              />
              {help}
            </div>
          );
        return (
          <div class="field" key={name}>
            {label}
            <textarea
              id={id}
              rows={3}
              value={String(raw[name] ?? '')}
              required={required.has(name)}
              aria-describedby={describedBy}
              placeholder="JSON"
              onInput={(e) => set(name, e.currentTarget.value)}
            />
            {help}
          </div>
        );
      })}
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      <button type="submit" disabled={props.busy}>
        {props.submitLabel}
      </button>
    </form>
  );
}
