import { describe, expect, it } from 'vitest';
import { validateDefinition } from '../../src/builder/engine/definition.js';
import {
  anchorOf,
  anchorsOf,
  fromDefinition,
  localProblems,
  newConfigRow,
  newParamRow,
  newTool,
  referencesOf,
  toDefinition,
  type Model,
} from '../../web/src/pages/builder-model.js';

const FULL = {
  format: 1,
  id: 'full',
  name: 'Full',
  description: 'Every key',
  config: [
    { name: 'baseUrl', type: 'url', required: true, label: 'Base URL', description: 'root' },
    { name: 'apiKey', type: 'string', encrypted: true },
  ],
  tools: [
    {
      name: 'search',
      description: 'Searches',
      parameters: [
        { name: 'q', type: 'string', required: true, description: 'query' },
        { name: 'limit', type: 'integer', enum: [10, 20] },
      ],
      method: 'POST',
      url: '{{config.baseUrl}}/search',
      query: { q: '{{params.q}}' },
      headers: { Authorization: 'Bearer {{config.apiKey}}', 'X-Tilde~': 'x' },
      body: { kind: 'json', value: { q: '{{params.q}}', n: '{{params.limit}}' } },
      response: { kind: 'json', pointer: '/items', maxBytes: 1000 },
      timeoutMs: 5000,
    },
    {
      name: 'post_form',
      description: 'Posts a form',
      parameters: [],
      method: 'POST',
      url: 'https://api.example.com/form',
      body: { kind: 'form', fields: { a: '{{config.apiKey}}' } },
      response: { kind: 'text' },
    },
  ],
};

describe('builder form model', () => {
  it('round-trips a definition, keeping the keys the form does not edit', () => {
    const back = toDefinition(fromDefinition(FULL));
    expect(back).toEqual(FULL);
    expect(validateDefinition(back).ok).toBe(true);
  });

  it('builds a valid definition from rows; enum text becomes typed values', () => {
    const m: Model = { id: 'x', name: 'X', description: 'd', config: [], tools: [newTool()], extra: {} };
    m.config.push({ ...newConfigRow(), name: 'token', encrypted: true });
    const t = m.tools[0]!;
    Object.assign(t, { name: 'get', description: 'Gets', url: 'https://api.example.com/{{params.n}}' });
    t.parameters.push({ ...newParamRow(), name: 'n', type: 'number', required: true, enumText: '1, 2.5' });
    t.headers.push({ key: 'X-Token', value: '{{config.token}}' });
    const def = toDefinition(m);
    expect(def.tools).toEqual([
      {
        name: 'get',
        description: 'Gets',
        parameters: [{ name: 'n', type: 'number', required: true, enum: [1, 2.5] }],
        method: 'GET',
        url: 'https://api.example.com/{{params.n}}',
        headers: { 'X-Token': '{{config.token}}' },
        response: { kind: 'text' },
      },
    ]);
    expect(validateDefinition(def).ok).toBe(true);
    expect(referencesOf(m, t)).toEqual(['{{config.token}}', '{{params.n}}']);
  });

  it('maps every server problem pointer to the most specific field, or to none', () => {
    const m = fromDefinition(FULL);
    const anchors = anchorsOf(m);
    expect(anchorOf('/tools/0/url', anchors)).toBe('/tools/0/url');
    expect(anchorOf('/tools/0/parameters/1/enum/0', anchors)).toBe('/tools/0/parameters/1/enum');
    expect(anchorOf('/tools/0/headers/X-Tilde~0', anchors)).toBe('/tools/0/headers/X-Tilde~0');
    expect(anchorOf('/tools/0/body/value/q', anchors)).toBe('/tools/0/body');
    expect(anchorOf('/tools/0/query/q', anchors)).toBe('/tools/0');
    expect(anchorOf('/config/1/name', anchors)).toBe('/config/1/name');
    expect(anchorOf('/tools/7/name', anchors)).toBe('/tools');
    expect(anchorOf('', anchors)).toBeUndefined();
    expect(anchorOf('/format', anchors)).toBeUndefined();
    // every problem the validator reports for a broken definition lands somewhere in the form
    const broken = { ...FULL, tools: [{ ...FULL.tools[0], url: '{{params.q}}/x', headers: { Host: 'h' } }] };
    const r = validateDefinition(broken);
    expect(r.ok).toBe(false);
    if (!r.ok)
      for (const p of r.problems)
        expect(anchorOf(p.pointer, anchorsOf(fromDefinition(broken)))).toBeDefined();
  });

  it('reports a JSON body that does not parse before sending it', () => {
    const m = fromDefinition(FULL);
    expect(localProblems(m)).toEqual([]);
    m.tools[0]!.bodyText = '{"q": ';
    expect(localProblems(m)).toEqual([
      { pointer: '/tools/0/body/value', message: expect.stringMatching(/^is not valid JSON/) },
    ]);
  });
});
