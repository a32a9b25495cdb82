// Part of the no-code runtime (see template.ts): imports nothing from the host outside src/builder.
import { DEFINITION_LIMITS as L, envNameOf, type Definition, type ToolDefinition } from './definition.js';
import {
  encodeUrlValue,
  lookup,
  missesParam,
  parseTemplate,
  renderParts,
  scalarText,
  type TemplatePart,
  type TemplateValues,
} from './template.js';

/** A request that cannot be rendered from these values (the message names the part, never a value). */
export class RenderError extends Error {}

/** What one rendered tool call sends. */
export interface RenderedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** An MCP tool result (the subset the runtime produces). */
export interface ToolResult {
  content: { type: 'text'; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

export interface ToolOutcome {
  /** HTTP status, or null when no response arrived (timeout, connection error, render error). */
  status: number | null;
  durationMs: number;
  result: ToolResult;
  request?: RenderedRequest;
}

/** The fetch the call goes through (the host's egress-guarded fetch, or undici via the egress proxy). */
export type FetchFn = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    redirect: 'manual';
    signal: AbortSignal;
  },
) => Promise<Response>;

export interface ExecuteOptions {
  fetch: FetchFn;
  /** Upper bound on the tool's own `timeoutMs`. */
  maxTimeoutMs: number;
  /** Upper bound on the tool's own `response.maxBytes`. */
  maxResponseBytes: number;
  signal?: AbortSignal;
  /** Errors the caller wants thrown rather than turned into an `isError` result (e.g. egress refusals). */
  rethrow?: (err: unknown) => boolean;
}

/** Problems of `params` against the tool's parameters (unknown, missing, wrong type, not in enum). */
export function paramProblems(tool: ToolDefinition, params: Record<string, unknown>): string[] {
  const out: string[] = [];
  const known = new Map(tool.parameters.map((p) => [p.name, p]));
  for (const k of Object.keys(params)) if (!known.has(k)) out.push(`unknown parameter "${k}"`);
  for (const p of tool.parameters) {
    const v = params[p.name];
    if (v === undefined || !Object.prototype.hasOwnProperty.call(params, p.name)) {
      if (p.required) out.push(`parameter "${p.name}" is required`);
      continue;
    }
    const typeOk =
      p.type === 'string'
        ? typeof v === 'string'
        : p.type === 'boolean'
          ? typeof v === 'boolean'
          : typeof v === 'number' && Number.isFinite(v) && (p.type === 'number' || Number.isInteger(v));
    if (!typeOk) out.push(`parameter "${p.name}" must be ${p.type === 'integer' ? 'an' : 'a'} ${p.type}`);
    else if (p.enum && !p.enum.includes(v as string | number))
      out.push(`parameter "${p.name}" must be one of ${JSON.stringify(p.enum)}`);
  }
  return out;
}

/** Problems of a configuration object against the definition's fields (types; required when `strict`). */
export function configProblems(def: Definition, config: Record<string, unknown>, strict: boolean): string[] {
  const out: string[] = [];
  const known = new Map(def.config.map((f) => [f.name, f]));
  for (const k of Object.keys(config)) if (!known.has(k)) out.push(`unknown configuration field "${k}"`);
  for (const f of def.config) {
    const v = config[f.name];
    if (v === undefined || v === null || v === '') {
      if (f.required && strict) out.push(`configuration field "${f.name}" is required`);
      continue;
    }
    const ok =
      f.type === 'number'
        ? typeof v === 'number' && Number.isFinite(v)
        : f.type === 'boolean'
          ? typeof v === 'boolean'
          : typeof v === 'string';
    if (!ok)
      out.push(`configuration field "${f.name}" must be a ${f.type === 'url' ? 'URL string' : f.type}`);
    else if (f.type === 'url' && !isHttpUrl(v as string))
      out.push(`configuration field "${f.name}" must be an http:// or https:// URL`);
  }
  return out;
}

/** The configuration as the host passes it to a plugin process (one variable per field, see envNameOf). */
export function configFromEnv(def: Definition, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of def.config) {
    const raw = env[envNameOf(f.name)];
    if (raw === undefined || raw === '') continue;
    out[f.name] = f.type === 'number' ? Number(raw) : f.type === 'boolean' ? raw === 'true' : raw;
  }
  return out;
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}

const OMIT = Symbol('omit');

function renderJson(value: unknown, values: TemplateValues): unknown {
  if (typeof value === 'string') {
    const parts = parseTemplate(value);
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only?.kind === 'ref') {
      const v = lookup(values, only);
      return v === undefined ? OMIT : v;
    }
    return renderParts(parts, values, (t) => t);
  }
  if (Array.isArray(value))
    return value.map((v) => {
      const r = renderJson(v, values);
      return r === OMIT ? null : r;
    });
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = renderJson(v, values);
      if (r !== OMIT) out[k] = r;
    }
    return out;
  }
  return value;
}

function renderUrl(tool: ToolDefinition, values: TemplateValues): string {
  const parts = parseTemplate(tool.url);
  const first = parts[0];
  let prefix = '';
  let rest: readonly TemplatePart[] = parts;
  if (first?.kind === 'ref') {
    const base = scalarText(lookup(values, first));
    if (!isHttpUrl(base))
      throw new RenderError(`configuration field "${first.name}" must be set to an http:// or https:// URL`);
    const u = new URL(base);
    if (u.search !== '' || u.hash !== '')
      throw new RenderError(`configuration field "${first.name}" must be a URL without ? or #`);
    prefix = base.replace(/\/+$/, '');
    rest = parts.slice(1);
  }
  const rendered = prefix + renderParts(rest, values, encodeUrlValue);
  let url: URL;
  try {
    url = new URL(rendered);
  } catch {
    throw new RenderError('the rendered URL is not valid');
  }
  const expected = new URL(prefix !== '' ? prefix : rendered).origin;
  if (url.origin !== expected) throw new RenderError('the rendered URL leaves its origin');
  const path = rendered
    .slice(rendered.indexOf('//') + 2)
    .replace(/^[^/?#]*/, '')
    .replace(/[?#].*$/s, '');
  if (path.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg)))
    throw new RenderError('the rendered URL path has a "." or ".." segment');
  for (const [key, template] of Object.entries(tool.query ?? {})) {
    const q = parseTemplate(template);
    if (missesParam(q, values)) continue;
    url.searchParams.append(
      key,
      renderParts(q, values, (t) => t),
    );
  }
  if (url.href.length > L.renderedUrlChars)
    throw new RenderError(`the rendered URL is longer than ${L.renderedUrlChars} characters`);
  return url.href;
}

/**
 * The request one call of `tool` sends with these values. Values are encoded for where they land:
 * percent-encoded in the URL path and query, JSON-encoded in JSON bodies, form-encoded in form bodies;
 * a header value with a line break or control character is refused (RenderError).
 */
export function renderRequest(tool: ToolDefinition, values: TemplateValues): RenderedRequest {
  const url = renderUrl(tool, values);
  const headers: Record<string, string> = {
    accept: tool.response.kind === 'json' ? 'application/json' : '*/*',
    'user-agent': 'hay-no-code/1',
  };
  let headerBytes = 0;
  for (const [name, template] of Object.entries(tool.headers ?? {})) {
    const parts = parseTemplate(template);
    if (missesParam(parts, values)) continue;
    const value = renderParts(parts, values, (t) => t);
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value))
      throw new RenderError(`header ${name}: a value contains a line break or control character`);
    headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    headers[name.toLowerCase()] = value;
  }
  if (headerBytes > L.renderedHeaderBytes)
    throw new RenderError(`the rendered headers are larger than ${L.renderedHeaderBytes} bytes`);
  let body: string | undefined;
  let contentType: string | undefined;
  const b = tool.body;
  if (b?.kind === 'json') {
    const v = renderJson(b.value, values);
    body = JSON.stringify(v === OMIT ? null : v);
    contentType = 'application/json';
  } else if (b?.kind === 'text') {
    body = renderParts(parseTemplate(b.template), values, (t) => t);
    contentType = b.contentType ?? 'text/plain; charset=utf-8';
  } else if (b?.kind === 'form') {
    const form = new URLSearchParams();
    for (const [k, template] of Object.entries(b.fields)) {
      const parts = parseTemplate(template);
      if (!missesParam(parts, values))
        form.append(
          k,
          renderParts(parts, values, (t) => t),
        );
    }
    body = form.toString();
    contentType = 'application/x-www-form-urlencoded';
  }
  if (body !== undefined) {
    if (Buffer.byteLength(body) > L.renderedBodyBytes)
      throw new RenderError(`the rendered body is larger than ${L.renderedBodyBytes} bytes`);
    if (contentType && headers['content-type'] === undefined) headers['content-type'] = contentType;
  }
  return { method: tool.method, url, headers, ...(body !== undefined ? { body } : {}) };
}

function errorResult(text: string): ToolResult {
  return { isError: true, content: [{ type: 'text', text }] };
}

async function readCapped(response: Response, max: number): Promise<string | undefined> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** RFC 6901 lookup; undefined when the pointer does not resolve. */
function atPointer(value: unknown, pointer: string): unknown {
  if (pointer === '') return value;
  let cur: unknown = value;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur) && /^(0|[1-9]\d*)$/.test(key)) cur = cur[Number(key)];
    else if (cur !== null && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, key))
      cur = (cur as Record<string, unknown>)[key];
    else return undefined;
  }
  return cur;
}

/** True when the error chain holds undici's refusal of a CONNECT by the egress proxy (https targets). */
function proxyRefused(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++, e = e.cause)
    if (/^Proxy response \(403\)/.test(e.message)) return true;
  return false;
}

/** Short reason of a failed fetch (an error code, never an address or a stack). */
function failureReason(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return code && /^[A-Z0-9_]{2,40}$/.test(code) ? code : 'network error';
}

/**
 * Runs one tool: renders the request, sends it with `redirect: manual` under the tool's timeout, and
 * maps the response. 2xx: the body as text (bounded), or for `response.kind: json` the parsed value (at
 * `response.pointer`) as text and, when it is an object, as structured content. Anything else is an
 * `isError` result naming only the status (redirects are not followed; error bodies are not read).
 */
export async function executeTool(
  tool: ToolDefinition,
  values: TemplateValues,
  options: ExecuteOptions,
): Promise<ToolOutcome> {
  const started = performance.now();
  const done = (status: number | null, result: ToolResult, request?: RenderedRequest): ToolOutcome => ({
    status,
    durationMs: Math.round(performance.now() - started),
    result,
    ...(request ? { request } : {}),
  });
  let request: RenderedRequest;
  try {
    request = renderRequest(tool, values);
  } catch (err) {
    if (err instanceof RenderError) return done(null, errorResult(err.message));
    throw err;
  }
  const timeoutMs = Math.min(tool.timeoutMs ?? L.defaultTimeoutMs, options.maxTimeoutMs);
  const maxBytes = Math.min(tool.response.maxBytes ?? L.defaultResponseBytes, options.maxResponseBytes);
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let response: Response;
  let text: string | undefined;
  try {
    response = await options.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
      redirect: 'manual',
      signal,
    });
    if (response.status === 403 && response.headers.get('x-hay-egress') === 'denied') {
      // the host's egress proxy refused the destination: its message names the rule, no remote text
      const why = (await readCapped(response, 2048).catch(() => undefined))?.trim().split('\n')[0];
      return done(null, errorResult(why?.startsWith('Egress') ? why : 'Egress denied'), request);
    }
    if (response.status < 200 || response.status > 299) {
      await response.body?.cancel().catch(() => undefined);
      const note = response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : '';
      return done(response.status, errorResult(`HTTP ${response.status}${note}`), request);
    }
    text = await readCapped(response, maxBytes);
  } catch (err) {
    if (options.rethrow?.(err)) throw err;
    if (proxyRefused(err))
      return done(
        null,
        errorResult('Egress denied: the host egress policy refused this destination'),
        request,
      );
    if (timeout.aborted)
      return done(null, errorResult(`the request timed out after ${timeoutMs} ms`), request);
    if (options.signal?.aborted) return done(null, errorResult('the call was cancelled'), request);
    return done(null, errorResult(`the request failed (${failureReason(err)})`), request);
  }
  if (text === undefined)
    return done(response.status, errorResult(`the response body exceeds ${maxBytes} bytes`), request);
  if (tool.response.kind === 'text')
    return done(response.status, { content: [{ type: 'text', text }] }, request);
  let parsed: unknown;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    return done(response.status, errorResult('the response is not JSON'), request);
  }
  const picked = atPointer(parsed, tool.response.pointer ?? '');
  if (picked === undefined)
    return done(
      response.status,
      errorResult(`the response has nothing at ${tool.response.pointer ?? ''}`),
      request,
    );
  const result: ToolResult = { content: [{ type: 'text', text: JSON.stringify(picked) }] };
  if (picked !== null && typeof picked === 'object' && !Array.isArray(picked))
    result.structuredContent = picked as Record<string, unknown>;
  return done(response.status, result, request);
}
