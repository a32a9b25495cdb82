import { describe, expect, it } from 'vitest';
import {
  DEFINITION_LIMITS,
  validateDefinition,
  type Definition,
  type DefinitionInput,
} from '../../src/builder/engine/definition.js';
import {
  executeTool,
  paramProblems,
  renderRequest,
  RenderError,
  type FetchFn,
} from '../../src/builder/engine/execute.js';
import { networkOf, pluginFilesOf } from '../../src/builder/plugin-files.js';

/** Definition validation (schema, bounds, references with JSON pointers) and request rendering. */
function base(overrides: Partial<DefinitionInput['tools'][number]> = {}): DefinitionInput {
  return {
    id: 'crm',
    name: 'CRM',
    description: 'CRM API',
    config: [
      { name: 'baseUrl', type: 'url', required: true },
      { name: 'apiKey', type: 'string', encrypted: true },
      { name: 'region', type: 'string' },
    ],
    tools: [
      {
        name: 'get_contact',
        description: 'One contact',
        parameters: [
          { name: 'id', type: 'string', required: true },
          { name: 'limit', type: 'integer' },
          { name: 'tag', type: 'string' },
        ],
        method: 'GET',
        url: '{{config.baseUrl}}/contacts/{{params.id}}',
        query: { limit: '{{params.limit}}', region: '{{config.region}}' },
        headers: { Authorization: 'Bearer {{config.apiKey}}' },
        ...overrides,
      },
    ],
  };
}

function valid(def: DefinitionInput): Definition {
  const r = validateDefinition(def);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.definition;
}

function problems(def: unknown) {
  const r = validateDefinition(def);
  return r.ok ? [] : r.problems;
}

const cfg = { baseUrl: 'https://api.example.com/v1', apiKey: 'sk-1', region: 'eu' };

describe('definition validation', () => {
  it('accepts a definition and applies defaults', () => {
    const def = valid(base());
    expect(def.format).toBe(1);
    expect(def.tools[0]?.response).toEqual({ kind: 'text' });
  });

  it('names the JSON pointer of an unknown reference', () => {
    expect(problems(base({ headers: { 'X-Key': '{{config.token}}' } }))).toEqual([
      {
        pointer: '/tools/0/headers/X-Key',
        message: 'references {{config.token}}, but there is no configuration field "token"',
      },
    ]);
    const p = problems(
      base({ method: 'POST', body: { kind: 'json', value: { a: [{ b: '{{params.nope}}' }] } } }),
    );
    expect(p.map((x) => x.pointer)).toEqual(['/tools/0/body/value/a/0/b']);
    expect(p[0]?.message).toContain('has no parameter "nope"');
    expect(problems(base({ query: { 'a/b': '{{params.x}}' } })).map((x) => x.pointer)).toEqual([
      '/tools/0/query/a~1b',
    ]);
  });

  it('refuses malformed references', () => {
    const p = problems(base({ url: '{{config.baseUrl}}/x/{{ params.id + 1 }}' }));
    expect(p[0]?.pointer).toBe('/tools/0/url');
    expect(p[0]?.message).toContain('must be {{config.<name>}} or {{params.<name>}}');
    expect(problems(base({ url: '{{config.baseUrl}}/{{params.id' }))[0]?.message).toContain('no closing');
  });

  it('keeps parameters out of the URL origin', () => {
    const msg = (url: string) => problems(base({ url }))[0]?.message ?? '';
    expect(msg('https://{{params.id}}.example.com/x')).toContain('host part of the URL must be literal');
    expect(msg('https://{{params.id}}')).toContain('host part of the URL must be literal');
    expect(msg('{{config.baseUrl}}{{params.id}}')).toContain('must be followed by "/", "?" or nothing');
    expect(msg('{{config.region}}/x')).toContain('of type url');
    expect(msg('{{params.id}}/x')).toContain('of type url');
    expect(msg('ftp://example.com/x')).toContain('http:// or https://');
    expect(msg('https://user:pw@example.com/x')).toContain('credentials');
    expect(problems(base({ url: 'https://api.example.com:8443/c/{{params.id}}' }))).toEqual([]);
  });

  it('refuses framing headers, line breaks, duplicates and a GET body', () => {
    expect(problems(base({ headers: { Host: 'evil' } }))[0]?.message).toContain('set by the runtime');
    expect(problems(base({ headers: { 'Transfer-Encoding': 'chunked' } }))).toHaveLength(1);
    expect(problems(base({ headers: { 'X-A': 'a\r\nX-B: b' } }))[0]?.message).toContain('line break');
    expect(problems(base({ headers: { 'Bad Name': 'x' } }))[0]?.pointer).toBe('/tools/0/headers/Bad Name');
    expect(problems(base({ headers: { 'x-a': '1', 'X-A': '2' } }))[0]?.message).toContain('duplicates');
    expect(problems(base({ body: { kind: 'text', template: 'x' } }))[0]?.message).toContain('GET');
  });

  it('refuses duplicates and enum values of the wrong type', () => {
    const def = base();
    def.tools.push({ ...def.tools[0]!, parameters: [] });
    expect(problems(def).map((p) => p.pointer)).toContain('/tools/1/name');
    const d2 = base({
      parameters: [
        { name: 'id', type: 'string', required: true },
        { name: 'id', type: 'integer', enum: [1, 2.5] },
      ],
      query: {},
    });
    expect(problems(d2).map((p) => p.pointer)).toEqual([
      '/tools/0/parameters/1/name',
      '/tools/0/parameters/1/enum/1',
    ]);
    const d3 = base();
    d3.config!.push({ name: 'APIKEY', type: 'string' });
    expect(problems(d3).map((p) => p.pointer)).toEqual(['/config/3/name']);
  });

  it('bounds counts and sizes', () => {
    const many = base();
    many.tools = Array.from({ length: DEFINITION_LIMITS.tools + 1 }, (_, i) => ({
      ...base().tools[0]!,
      name: `t${i}`,
    }));
    expect(problems(many).map((p) => p.pointer)).toEqual(['/tools']);
    expect(problems(base({ description: 'x'.repeat(5000) }))[0]?.pointer).toBe('/tools/0/description');
    expect(problems(base({ url: `https://a.example.com/${'x'.repeat(3000)}` }))[0]?.pointer).toBe(
      '/tools/0/url',
    );
    const headers = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, 'v']));
    expect(problems(base({ headers }))[0]?.pointer).toBe('/tools/0/headers');
    const huge = { ...base(), description: 'x'.repeat(300 * 1024) };
    expect(problems(huge)[0]?.message).toContain('the limit is 262144');
    let deep: unknown = '{{params.id}}';
    for (let i = 0; i < 12; i++) deep = { d: deep };
    expect(problems(base({ method: 'POST', body: { kind: 'json', value: deep } }))[0]?.message).toContain(
      'nests deeper',
    );
    expect(problems({ ...base(), extra: 1 })[0]?.message).toMatch(/Unrecognized key/);
  });
});

describe('request rendering', () => {
  const render = (
    params: Record<string, unknown>,
    overrides: Partial<DefinitionInput['tools'][number]> = {},
    config = cfg,
  ) => renderRequest(valid(base(overrides)).tools[0]!, { config, params });

  it('percent-encodes parameters in the path and query; ../ cannot climb', () => {
    const r = render({ id: '../../admin?x=1#f', limit: 5 });
    expect(r.url).toBe('https://api.example.com/v1/contacts/..%2F..%2Fadmin%3Fx%3D1%23f?limit=5&region=eu');
    expect(new URL(r.url).pathname).toBe('/v1/contacts/..%2F..%2Fadmin%3Fx%3D1%23f');
    expect(() => render({ id: '..' })).toThrow(RenderError);
    expect(() => render({ id: '.' })).toThrow(/"\." or "\.\." segment/);
    expect(render({ id: '%2e%2e' }).url).toContain('/contacts/%252e%252e');
    expect(render({ id: 'a&b=c' }, { url: '{{config.baseUrl}}/c?q={{params.id}}' }).url).toBe(
      'https://api.example.com/v1/c?q=a%26b%3Dc&region=eu',
    );
  });

  it('drops a query pair or header whose parameter is absent; strips the base URL trailing slash', () => {
    const r = render({ id: '7' }, {}, { ...cfg, baseUrl: 'https://api.example.com/v1/' });
    expect(r.url).toBe('https://api.example.com/v1/contacts/7?region=eu');
    const h = render(
      { id: '7' },
      { headers: { 'X-Tag': '{{params.tag}}', Authorization: 'Bearer {{config.apiKey}}' } },
    );
    expect(h.headers['x-tag']).toBeUndefined();
    expect(h.headers.authorization).toBe('Bearer sk-1');
  });

  it('refuses a base URL that is not http(s) or carries a query', () => {
    expect(() => render({ id: '1' }, {}, { ...cfg, baseUrl: 'file:///etc/passwd' })).toThrow(/http/);
    expect(() => render({ id: '1' }, {}, { ...cfg, baseUrl: 'https://a.example.com/?k=1' })).toThrow(
      /without \?/,
    );
  });

  it('refuses CRLF and control characters in rendered headers without quoting the value', () => {
    const over = { headers: { 'X-Tag': '{{params.tag}}' } };
    expect(() => render({ id: '1', tag: 'a\r\nX-Evil: 1' }, over)).toThrow(
      'header X-Tag: a value contains a line break or control character',
    );
    expect(() => render({ id: '1', tag: 'a\u0000b' }, over)).toThrow(RenderError);
  });

  it('JSON-encodes parameters in JSON bodies (types kept, absent keys dropped, no injection)', () => {
    const r = render(
      { id: 'x", "admin": true, "y": "', limit: 3 },
      {
        method: 'POST',
        body: {
          kind: 'json',
          value: {
            id: '{{params.id}}',
            n: '{{params.limit}}',
            tag: '{{params.tag}}',
            note: 'id={{params.id}}',
            list: ['{{params.tag}}'],
          },
        },
      },
    );
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body ?? '')).toEqual({
      id: 'x", "admin": true, "y": "',
      n: 3,
      note: 'id=x", "admin": true, "y": "',
      list: [null],
    });
  });

  it('renders once: a value holding a reference is inserted as text', () => {
    const r = render(
      { id: '1', tag: '{{config.apiKey}}' },
      { method: 'POST', body: { kind: 'text', template: 'tag={{params.tag}}' } },
    );
    expect(r.body).toBe('tag={{config.apiKey}}');
    const f = render(
      { id: '1', tag: 'a&b' },
      { method: 'POST', body: { kind: 'form', fields: { t: '{{params.tag}}' } } },
    );
    expect(f.body).toBe('t=a%26b');
  });

  it('bounds huge values', () => {
    expect(() => render({ id: 'x'.repeat(20_000) })).toThrow(/longer than 8192/);
    expect(() =>
      render({ id: '1', tag: 'y'.repeat(20_000) }, { headers: { 'X-Tag': '{{params.tag}}' } }),
    ).toThrow(/headers are larger/);
    expect(() =>
      render(
        { id: '1', tag: 'z'.repeat(1024 * 1024 + 1) },
        { method: 'POST', body: { kind: 'text', template: '{{params.tag}}' } },
      ),
    ).toThrow(/body is larger/);
  });

  it('checks parameters against the tool', () => {
    const t = valid(base()).tools[0]!;
    expect(paramProblems(t, { id: 1, limit: 1.5, nope: true })).toEqual([
      'unknown parameter "nope"',
      'parameter "id" must be a string',
      'parameter "limit" must be an integer',
    ]);
    expect(paramProblems(t, {})).toEqual(['parameter "id" is required']);
  });
});

describe('executing a tool', () => {
  const fetchOf =
    (status: number, body: string, headers: Record<string, string> = {}): FetchFn =>
    () =>
      Promise.resolve(new Response(body, { status, headers }));
  const run = (
    fetch: FetchFn,
    overrides: Partial<DefinitionInput['tools'][number]> = {},
    maxResponseBytes = 1024,
  ) =>
    executeTool(
      valid(base(overrides)).tools[0]!,
      { config: cfg, params: { id: '1' } },
      {
        fetch,
        maxTimeoutMs: 1000,
        maxResponseBytes,
      },
    );

  it('maps non-2xx to isError with the status only', async () => {
    const out = await run(fetchOf(500, 'internal stack trace at /srv/app.js'));
    expect(out.status).toBe(500);
    expect(out.result).toEqual({ isError: true, content: [{ type: 'text', text: 'HTTP 500' }] });
    expect((await run(fetchOf(302, ''))).result.content[0]?.text).toBe(
      'HTTP 302 (redirects are not followed)',
    );
  });

  it('returns text, or JSON at a pointer as structured content, within the size cap', async () => {
    expect((await run(fetchOf(200, 'plain'))).result).toEqual({ content: [{ type: 'text', text: 'plain' }] });
    const json = await run(fetchOf(200, JSON.stringify({ data: { a: 1 } })), {
      response: { kind: 'json', pointer: '/data' },
    });
    expect(json.result.structuredContent).toEqual({ a: 1 });
    const notJson = await run(fetchOf(200, '<html>'), { response: { kind: 'json' } });
    expect(notJson.result.content[0]?.text).toBe('the response is not JSON');
    const big = await run(fetchOf(200, 'x'.repeat(2000)));
    expect(big.result).toEqual({
      isError: true,
      content: [{ type: 'text', text: 'the response body exceeds 1024 bytes' }],
    });
  });

  it('times out, and reports a render error without sending', async () => {
    let sent = 0;
    const hang: FetchFn = (_url, init) => {
      sent++;
      return new Promise((_r, reject) =>
        init.signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    };
    const out = await run(hang, { timeoutMs: 100 });
    expect(out.result.content[0]?.text).toBe('the request timed out after 100 ms');
    const bad = await executeTool(
      valid(base()).tools[0]!,
      { config: cfg, params: { id: '..' } },
      {
        fetch: hang,
        maxTimeoutMs: 1000,
        maxResponseBytes: 1024,
      },
    );
    expect(bad.status).toBeNull();
    expect(bad.result.isError).toBe(true);
    expect(sent).toBe(1);
  });

  it('recognizes a refused CONNECT (https through the egress proxy)', async () => {
    const refused: FetchFn = () => {
      const inner = new Error('Proxy response (403) !== 200 when HTTP Tunneling');
      return Promise.reject(
        new TypeError('fetch failed', { cause: new Error('Request was cancelled.', { cause: inner }) }),
      );
    };
    const out = await run(refused);
    expect(out.result.content[0]?.text).toBe(
      'Egress denied: the host egress policy refused this destination',
    );
  });

  it('recognizes a refusal by the host egress proxy', async () => {
    const out = await run(
      fetchOf(403, 'Egress denied: plugin crm may not reach 10.0.0.1:80\n', { 'x-hay-egress': 'denied' }),
    );
    expect(out.status).toBeNull();
    expect(out.result.content[0]?.text).toBe('Egress denied: plugin crm may not reach 10.0.0.1:80');
  });
});

describe('generated plugin files', () => {
  it('writes a manifest with the tools, configSchema, network and the runtime start command', () => {
    const def = valid(base());
    const files = pluginFilesOf(def, '1.2.3');
    const manifest = JSON.parse(files['manifest.json'] ?? '') as {
      version: string;
      capabilities: { mcp: { startCommand: string; tools: { input_schema: unknown }[] } };
      configSchema: Record<string, unknown>;
      permissions: { network: unknown };
    };
    expect(manifest.version).toBe('1.2.3');
    expect(manifest.capabilities.mcp.startCommand).toBe(
      'node node_modules/@hay/no-code-runtime/runtime/main.js',
    );
    expect(manifest.capabilities.mcp.tools[0]?.input_schema).toEqual({
      type: 'object',
      properties: { id: { type: 'string' }, limit: { type: 'integer' }, tag: { type: 'string' } },
      required: ['id'],
      additionalProperties: false,
    });
    expect(manifest.configSchema.apiKey).toEqual({
      type: 'string',
      label: 'apiKey',
      encrypted: true,
      env: 'NOCODE_CFG_APIKEY',
    });
    expect(manifest.permissions.network).toEqual({ all: true });
    expect(JSON.parse(files['package.json'] ?? '').peerDependencies).toEqual({ '@hay/no-code-runtime': '*' });
    expect(networkOf(valid(base({ url: 'https://api.example.com:8443/c/{{params.id}}' })))).toEqual({
      hosts: ['api.example.com:8443'],
    });
  });
});

describe('the runtime stays self-contained', () => {
  it('engine/ and runtime/ import only each other and npm packages', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const root = new URL('../../src/builder/', import.meta.url);
    const bad: string[] = [];
    for (const folder of ['engine', 'runtime']) {
      for (const file of await readdir(new URL(`${folder}/`, root))) {
        const text = await readFile(new URL(`${folder}/${file}`, root), 'utf8');
        for (const m of text.matchAll(/from '([^']+)'/g)) {
          const spec = m[1] ?? '';
          const ok = spec.startsWith('./') || /^\.\.\/(engine|runtime)\//.test(spec) || !spec.startsWith('.');
          if (!ok) bad.push(`${folder}/${file}: ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });
});

describe('docs/PLUGIN_API.md', () => {
  it('its no-code example is a valid definition', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../docs/PLUGIN_API.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('\n## No-code HTTP plugins\n'));
    const example = /```json\n([\s\S]*?)```/.exec(section)?.[1] ?? 'null';
    const r = validateDefinition(JSON.parse(example));
    expect(r.ok ? [] : r.problems).toEqual([]);
  });
});
