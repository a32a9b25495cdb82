import { describe, expect, it } from 'vitest';
import { canonicalJson, ToolResultCache } from '../../src/invocation/tool-cache.js';
import type { CallToolResult } from '../../src/runtime/ports.js';

const result = (text: string, isError = false): CallToolResult => ({
  content: [{ type: 'text', text }],
  ...(isError ? { isError } : {}),
});

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('ToolResultCache', () => {
  it('canonical keys: argument key order does not matter, values do', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}',
    );
    const cache = new ToolResultCache(10);
    expect(cache.key('o', 'p', 'c', 't', { a: 1, b: 2 })).toBe(cache.key('o', 'p', 'c', 't', { b: 2, a: 1 }));
    expect(cache.key('o', 'p', 'c', 't', { a: 1 })).not.toBe(cache.key('o', 'p', 'c', 't', { a: 2 }));
  });

  it('never shares entries between organizations', () => {
    const cache = new ToolResultCache(10);
    cache.set(cache.key('org-a', 'p', 'sum', 'echo', { m: 1 }), result('a'), 60);
    expect(cache.get(cache.key('org-b', 'p', 'sum', 'echo', { m: 1 }))).toBeUndefined();
    expect(cache.get(cache.key('org-a', 'p', 'sum', 'echo', { m: 1 }))).toEqual(result('a'));
  });

  it('a new plugin version (checksum) misses', () => {
    const cache = new ToolResultCache(10);
    cache.set(cache.key('o', 'p', 'v1', 'echo', {}), result('old'), 60);
    expect(cache.get(cache.key('o', 'p', 'v2', 'echo', {}))).toBeUndefined();
  });

  it('expires entries after ttlSeconds on the injected clock', () => {
    const c = clock();
    const cache = new ToolResultCache(10, c.now);
    const k = cache.key('o', 'p', 'c', 't', {});
    cache.set(k, result('x'), 2);
    c.advance(1999);
    expect(cache.get(k)).toEqual(result('x'));
    c.advance(1);
    expect(cache.get(k)).toBeUndefined();
    expect(cache.stats().size).toBe(0);
  });

  it('never caches an isError result, a zero ttl, or with maxEntries 0', () => {
    const cache = new ToolResultCache(10);
    const k = cache.key('o', 'p', 'c', 't', {});
    cache.set(k, result('boom', true), 60);
    expect(cache.get(k)).toBeUndefined();
    cache.set(k, result('x'), 0);
    expect(cache.get(k)).toBeUndefined();
    const off = new ToolResultCache(0);
    off.set(k, result('x'), 60);
    expect(off.get(k)).toBeUndefined();
  });

  it('is a bounded LRU: a read refreshes an entry; the least recently used goes first', () => {
    const cache = new ToolResultCache(2);
    const [k1, k2, k3] = [1, 2, 3].map((i) => cache.key('o', 'p', 'c', 't', { i }));
    cache.set(k1!, result('1'), 60);
    cache.set(k2!, result('2'), 60);
    expect(cache.get(k1!)).toBeDefined();
    cache.set(k3!, result('3'), 60);
    expect(cache.stats().size).toBe(2);
    expect(cache.get(k2!)).toBeUndefined();
    expect(cache.get(k1!)).toEqual(result('1'));
    expect(cache.get(k3!)).toEqual(result('3'));
  });

  it("invalidates one organization's plugin, or the plugin for everyone", () => {
    const cache = new ToolResultCache(10);
    const a1 = cache.key('org-a', 'p1', 'c', 't', {});
    const a2 = cache.key('org-a', 'p2', 'c', 't', {});
    const b1 = cache.key('org-b', 'p1', 'c', 't', {});
    for (const k of [a1, a2, b1]) cache.set(k, result(k), 60);
    cache.invalidate('p1', 'org-a');
    expect(cache.get(a1)).toBeUndefined();
    expect(cache.get(a2)).toBeDefined();
    expect(cache.get(b1)).toBeDefined();
    cache.set(a1, result('again'), 60);
    cache.invalidate('p1');
    expect(cache.get(a1)).toBeUndefined();
    expect(cache.get(b1)).toBeUndefined();
    expect(cache.get(a2)).toBeDefined();
  });

  it('counts hits and misses', () => {
    const cache = new ToolResultCache(10);
    const k = cache.key('o', 'p', 'c', 't', {});
    cache.get(k);
    cache.set(k, result('x'), 60);
    cache.get(k);
    cache.get(k);
    expect(cache.stats()).toMatchObject({ size: 1, hits: 2, misses: 1, hitRate: 2 / 3 });
  });
});

describe('ToolResultCache byte budget (issue 9)', () => {
  const MB = 1024 * 1024;
  const big = (i: number): CallToolResult => ({
    content: [{ type: 'text', text: `${i}`.padEnd(4 * MB, 'x') }],
  });

  it('80 results of 4 MB hold at most the global budget, and each org at most its own', () => {
    const cache = new ToolResultCache(10_000, Date.now, { maxBytes: 64 * MB, maxBytesPerOrg: 16 * MB });
    for (let i = 0; i < 80; i++) cache.set(cache.key(`org-${i % 8}`, 'p', 'c', 't', { i }), big(i), 60);
    const { bytes, size } = cache.stats();
    console.log(`tool cache after 80 x 4 MB from 8 orgs: ${size} entries, ${(bytes / MB).toFixed(1)} MB`);
    expect(bytes).toBeLessThanOrEqual(64 * MB);
    for (let o = 0; o < 8; o++) expect(cache.bytesOf(`org-${o}`)).toBeLessThanOrEqual(16 * MB);
  });

  it('one org filling its budget never evicts another org', () => {
    const cache = new ToolResultCache(10_000, Date.now, { maxBytes: 64 * MB, maxBytesPerOrg: 16 * MB });
    const quiet = cache.key('quiet', 'p', 'c', 't', {});
    cache.set(quiet, result('keep me'), 60);
    for (let i = 0; i < 80; i++) cache.set(cache.key('noisy', 'p', 'c', 't', { i }), big(i), 60);
    expect(cache.get(quiet)).toEqual(result('keep me'));
    expect(cache.bytesOf('noisy')).toBeLessThanOrEqual(16 * MB);
    // the newest entries stay; a result over the per-org budget is not stored at all
    expect(cache.get(cache.key('noisy', 'p', 'c', 't', { i: 79 }))).toBeDefined();
    cache.set(
      cache.key('noisy', 'p', 'c', 't', { huge: true }),
      { content: [{ type: 'text', text: 'y'.repeat(17 * MB) }] },
      60,
    );
    expect(cache.get(cache.key('noisy', 'p', 'c', 't', { huge: true }))).toBeUndefined();
  });

  it('invalidation and expiry give the bytes back', () => {
    const c = clock();
    const cache = new ToolResultCache(100, c.now, { maxBytes: 64 * MB, maxBytesPerOrg: 16 * MB });
    cache.set(cache.key('o', 'p1', 'c', 't', {}), big(1), 1);
    cache.set(cache.key('o', 'p2', 'c', 't', {}), big(2), 60);
    cache.invalidate('p2', 'o');
    c.advance(2_000);
    expect(cache.get(cache.key('o', 'p1', 'c', 't', {}))).toBeUndefined();
    expect(cache.stats().bytes).toBe(0);
    expect(cache.bytesOf('o')).toBe(0);
  });
});
