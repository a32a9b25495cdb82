/**
 * The form model of the no-code builder and its two-way mapping to a definition (docs/PLUGIN_API.md,
 * "No-code HTTP plugins"). Keys the form does not edit are kept in `extra` and written back unchanged,
 * so the JSON view and the form never lose each other's data.
 */

export interface ConfigRow {
  name: string;
  type: string;
  required: boolean;
  encrypted: boolean;
  description: string;
  extra: Record<string, unknown>;
}

export interface ParamRow {
  name: string;
  type: string;
  required: boolean;
  description: string;
  /** Comma-separated allowed values; empty means no enum. */
  enumText: string;
  extra: Record<string, unknown>;
}

export interface HeaderRow {
  key: string;
  value: string;
}

export interface ToolModel {
  name: string;
  description: string;
  method: string;
  url: string;
  headers: HeaderRow[];
  /** `none`, `json` or `text`; a `form` body is kept in `extra` and edited in the JSON view. */
  bodyKind: string;
  bodyText: string;
  responseKind: string;
  responsePointer: string;
  /** Keys of `response` other than kind and pointer (e.g. maxBytes). */
  responseExtra: Record<string, unknown>;
  parameters: ParamRow[];
  extra: Record<string, unknown>;
}

export interface Model {
  id: string;
  name: string;
  description: string;
  config: ConfigRow[];
  tools: ToolModel[];
  extra: Record<string, unknown>;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : String(v));
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
function without(o: Obj, keys: string[]): Obj {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
export const CONFIG_TYPES = ['string', 'number', 'boolean', 'url'];
export const PARAM_TYPES = ['string', 'number', 'integer', 'boolean'];

export const newConfigRow = (): ConfigRow => ({
  name: '',
  type: 'string',
  required: false,
  encrypted: false,
  description: '',
  extra: {},
});
export const newParamRow = (): ParamRow => ({
  name: '',
  type: 'string',
  required: false,
  description: '',
  enumText: '',
  extra: {},
});
export const newTool = (): ToolModel => ({
  name: '',
  description: '',
  method: 'GET',
  url: 'https://',
  headers: [],
  bodyKind: 'none',
  bodyText: '',
  responseKind: 'text',
  responsePointer: '',
  responseExtra: {},
  parameters: [],
  extra: {},
});

export function fromDefinition(raw: unknown): Model {
  const d = obj(raw);
  return {
    id: str(d.id),
    name: str(d.name),
    description: str(d.description),
    config: arr(d.config).map((c) => {
      const o = obj(c);
      return {
        name: str(o.name),
        type: str(o.type) || 'string',
        required: o.required === true,
        encrypted: o.encrypted === true,
        description: str(o.description),
        extra: without(o, ['name', 'type', 'required', 'encrypted', 'description']),
      };
    }),
    tools: arr(d.tools).map((t) => {
      const o = obj(t);
      const body = obj(o.body);
      const kind = o.body === undefined ? 'none' : str(body.kind);
      const editable = kind === 'none' || kind === 'json' || kind === 'text';
      const response = obj(o.response);
      return {
        name: str(o.name),
        description: str(o.description),
        method: str(o.method) || 'GET',
        url: str(o.url),
        headers: Object.entries(obj(o.headers)).map(([key, value]) => ({ key, value: str(value) })),
        bodyKind: editable ? kind : 'none',
        bodyText:
          kind === 'json' ? JSON.stringify(body.value, null, 2) : kind === 'text' ? str(body.template) : '',
        responseKind: str(response.kind) || 'text',
        responsePointer: str(response.pointer),
        responseExtra: without(response, ['kind', 'pointer']),
        parameters: arr(o.parameters).map((p) => {
          const q = obj(p);
          return {
            name: str(q.name),
            type: str(q.type) || 'string',
            required: q.required === true,
            description: str(q.description),
            enumText: arr(q.enum).map(str).join(', '),
            extra: without(q, ['name', 'type', 'required', 'description', 'enum']),
          };
        }),
        extra: without(o, [
          'name',
          'description',
          'method',
          'url',
          'headers',
          'parameters',
          ...(editable ? ['body'] : []),
          'response',
        ]),
      };
    }),
    extra: without(d, ['id', 'name', 'description', 'config', 'tools']),
  };
}

function enumValues(p: ParamRow): unknown[] | undefined {
  const parts = p.enumText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) return undefined;
  return p.type === 'number' || p.type === 'integer'
    ? parts.map((s) => (Number.isFinite(Number(s)) ? Number(s) : s))
    : parts;
}

/** The definition the model stands for; a JSON body that does not parse is kept as its text (see localProblems). */
export function toDefinition(m: Model): Obj {
  return {
    ...m.extra,
    id: m.id,
    name: m.name,
    description: m.description,
    config: m.config.map((c) => ({
      ...c.extra,
      name: c.name,
      type: c.type,
      ...(c.required ? { required: true } : {}),
      ...(c.encrypted ? { encrypted: true } : {}),
      ...(c.description ? { description: c.description } : {}),
    })),
    tools: m.tools.map((t) => {
      let body: Obj | undefined;
      if (t.bodyKind === 'json') {
        let value: unknown = t.bodyText;
        try {
          value = JSON.parse(t.bodyText);
        } catch {
          /* reported by localProblems before anything is sent */
        }
        body = { kind: 'json', value };
      } else if (t.bodyKind === 'text') body = { kind: 'text', template: t.bodyText };
      return {
        ...t.extra,
        name: t.name,
        description: t.description,
        parameters: t.parameters.map((p) => {
          const values = enumValues(p);
          return {
            ...p.extra,
            name: p.name,
            type: p.type,
            ...(p.required ? { required: true } : {}),
            ...(p.description ? { description: p.description } : {}),
            ...(values ? { enum: values } : {}),
          };
        }),
        method: t.method,
        url: t.url,
        ...(t.headers.length > 0
          ? { headers: Object.fromEntries(t.headers.map((h) => [h.key, h.value])) }
          : {}),
        ...(body ? { body } : {}),
        response: {
          ...t.responseExtra,
          kind: t.responseKind,
          ...(t.responsePointer ? { pointer: t.responsePointer } : {}),
        },
      };
    }),
  };
}

export function escapePointerKey(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * The pointers the form shows problems at (most specific field first wins). A problem whose pointer is
 * none of these and has none of them as a prefix is listed at the top of the page.
 */
export function anchorsOf(m: Model): string[] {
  const out = ['/id', '/name', '/description', '/config', '/tools'];
  m.config.forEach((_, i) => {
    const b = `/config/${i}`;
    out.push(b, `${b}/name`, `${b}/type`, `${b}/required`, `${b}/encrypted`, `${b}/description`);
  });
  m.tools.forEach((t, i) => {
    const b = `/tools/${i}`;
    out.push(b, `${b}/name`, `${b}/description`, `${b}/method`, `${b}/url`, `${b}/headers`);
    out.push(`${b}/body`, `${b}/response`, `${b}/parameters`);
    t.headers.forEach((h) => out.push(`${b}/headers/${escapePointerKey(h.key)}`));
    t.parameters.forEach((_, j) => {
      const p = `${b}/parameters/${j}`;
      out.push(p, `${p}/name`, `${p}/type`, `${p}/required`, `${p}/description`, `${p}/enum`);
    });
  });
  return out;
}

/** The anchor a problem pointer belongs to, or undefined when no field of the form matches it. */
export function anchorOf(pointer: string, anchors: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const a of anchors)
    if ((pointer === a || pointer.startsWith(`${a}/`)) && (best === undefined || a.length > best.length))
      best = a;
  return best;
}

/**
 * Problems the form finds before sending (the server checks everything else): a JSON body that does not
 * parse would otherwise be sent as a JSON string.
 */
export function localProblems(m: Model): { pointer: string; message: string }[] {
  const out: { pointer: string; message: string }[] = [];
  m.tools.forEach((t, i) => {
    if (t.bodyKind !== 'json') return;
    try {
      JSON.parse(t.bodyText);
    } catch (err) {
      out.push({
        pointer: `/tools/${i}/body/value`,
        message: `is not valid JSON (${err instanceof Error ? err.message : String(err)})`,
      });
    }
  });
  return out;
}

/** The `{{config.x}}` / `{{params.y}}` references a tool's templates may use. */
export function referencesOf(m: Model, t: ToolModel): string[] {
  return [
    ...m.config.filter((c) => c.name).map((c) => `{{config.${c.name}}}`),
    ...t.parameters.filter((p) => p.name).map((p) => `{{params.${p.name}}}`),
  ];
}
