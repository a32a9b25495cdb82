import { describe, expect, it } from 'vitest';
import { approxBytes, MAX_JSON_DEPTH, measureJson } from '../../src/runtime/json-size.js';

function nested(depth: number): unknown {
  let v: unknown = 'x';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return v;
}

describe('measureJson', () => {
  it('counts the bytes approxBytes counts, in the same walk as the depth', () => {
    for (const v of [null, 1, 'abc', [], {}, { a: [1, 'two', { b: null }] }, nested(MAX_JSON_DEPTH)])
      expect(measureJson(v)).toEqual({ bytes: approxBytes(v), tooDeep: false });
  });

  it('is too deep past MAX_JSON_DEPTH levels of arrays and objects, without recursion', () => {
    expect(measureJson(nested(MAX_JSON_DEPTH + 1)).tooDeep).toBe(true);
    expect(measureJson(nested(100_000)).tooDeep).toBe(true);
    expect(measureJson(nested(3), 2).tooDeep).toBe(true);
    expect(measureJson(nested(2), 2).tooDeep).toBe(false);
  });
});
