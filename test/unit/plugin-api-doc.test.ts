/**
 * Keeps docs/PLUGIN_API.md in step with the code, in both directions: every manifest schema property
 * path and every HayErrorCode is documented, and every documented field or code exists.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { httpStatusOf, TRPC_CODE } from '../../src/api/error-map.js';
import type { HayErrorCode } from '../../src/errors.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const doc = readFileSync(root('docs/PLUGIN_API.md'), 'utf8');

type Node = Record<string, unknown>;
const schema = JSON.parse(readFileSync(root('plugins/base/plugin-manifest.schema.json'), 'utf8')) as Node;
const defs = schema.$defs as Record<string, Node>;

function deref(node: Node): Node {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  const target = defs[ref.replace('#/$defs/', '')];
  if (!target) throw new Error(`unresolved $ref ${ref}`);
  return deref(target);
}

/** Property paths as the doc writes them: `a.b`, `list[].field`, `map.<name>.field`. */
function schemaPaths(node: Node, prefix: string, out: string[]): string[] {
  const n = deref(node);
  for (const [key, child] of Object.entries((n.properties ?? {}) as Record<string, Node>)) {
    const p = prefix ? `${prefix}.${key}` : key;
    out.push(p);
    schemaPaths(child, p, out);
  }
  if (typeof n.additionalProperties === 'object' && n.additionalProperties !== null) {
    const p = `${prefix}.<name>`;
    out.push(p);
    schemaPaths(n.additionalProperties as Node, p, out);
  }
  if (typeof n.items === 'object' && n.items !== null && deref(n.items as Node).properties)
    schemaPaths(n.items as Node, `${prefix}[]`, out);
  return out;
}

/** First-column backticked cells of the markdown table under `## <heading>`. */
function tableKeys(heading: string): { key: string; cells: string[] }[] {
  const start = doc.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/PLUGIN_API.md has no "## ${heading}" section`);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const rows: { key: string; cells: string[] }[] = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|(.*)$/.exec(line);
    if (m?.[1]) rows.push({ key: m[1], cells: (m[2] ?? '').split('|').map((c) => c.trim()) });
  }
  return rows;
}

describe('docs/PLUGIN_API.md manifest reference', () => {
  const paths = schemaPaths(schema, '', []);
  const documented = tableKeys('Manifest reference').map((r) => r.key);

  it('finds the schema paths (sanity)', () => {
    expect(paths).toContain('capabilities.mcp.tools[].cache.ttlSeconds');
    expect(paths).toContain('configSchema.<name>.encrypted');
    expect(paths.length).toBeGreaterThan(50);
  });

  it('documents every schema property', () => {
    expect(paths.filter((p) => !documented.includes(p))).toEqual([]);
  });

  it('documents no field the schema lacks, and each once', () => {
    expect(documented.filter((p) => !paths.includes(p))).toEqual([]);
    expect(documented.filter((p, i) => documented.indexOf(p) !== i)).toEqual([]);
  });
});

describe('docs/PLUGIN_API.md error codes', () => {
  // TRPC_CODE is a Record<HayErrorCode, ...>: tsc keeps its keys equal to the union in src/errors.ts.
  const codes = Object.keys(TRPC_CODE) as HayErrorCode[];
  const rows = tableKeys('Error codes');

  it('documents every code with its HTTP status', () => {
    for (const code of codes) {
      const row = rows.find((r) => r.key === code);
      expect(row, `${code} is not documented`).toBeDefined();
      expect(row?.cells[0], `${code} HTTP status`).toBe(String(httpStatusOf(code)));
    }
  });

  it('documents no code that does not exist', () => {
    expect(rows.map((r) => r.key).filter((k) => !(codes as string[]).includes(k))).toEqual([]);
  });

  it('the error codes in src/errors.ts are the keys of the error map', () => {
    const source = readFileSync(root('src/errors.ts'), 'utf8');
    const union = /export type HayErrorCode =([^;]+);/.exec(source)?.[1] ?? '';
    const declared = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
    expect(declared.sort()).toEqual([...codes].sort());
  });
});
