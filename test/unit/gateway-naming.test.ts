import { describe, expect, it } from 'vitest';
import { MAX_TOOL_NAME_CHARS, buildNameTable } from '../../src/gateway/naming.js';
import { scopeAllows } from '../../src/security/key-scopes.js';

describe('gateway tool names', () => {
  it('prefixes with the plugin id and maps back', () => {
    const t = buildNameTable(
      [
        { pluginId: 'a', tool: 'echo' },
        { pluginId: 'b', tool: 'echo' },
      ],
      { unprefixed: false },
    );
    expect(t.exposedName({ pluginId: 'a', tool: 'echo' })).toBe('a__echo');
    expect(t.resolve('b__echo')).toEqual({ pluginId: 'b', tool: 'echo' });
    expect(t.resolve('echo')).toBeUndefined();
  });

  it('takes a tool a plugin lists twice as one tool: its plain name, unprefixed too', () => {
    const dup = [
      { pluginId: 'a', tool: 'echo' },
      { pluginId: 'a', tool: 'echo' },
      { pluginId: 'a', tool: 'other' },
    ];
    const t = buildNameTable(dup, { unprefixed: false });
    expect(t.exposedName({ pluginId: 'a', tool: 'echo' })).toBe('a__echo');
    expect(t.resolve('a__echo')).toEqual({ pluginId: 'a', tool: 'echo' });
    const u = buildNameTable(dup, { unprefixed: true });
    expect(u.exposedName({ pluginId: 'a', tool: 'echo' })).toBe('echo');
  });

  it('drops the prefix only where the tool name is unique', () => {
    const t = buildNameTable(
      [
        { pluginId: 'a', tool: 'echo' },
        { pluginId: 'b', tool: 'echo' },
        { pluginId: 'b', tool: 'count' },
      ],
      { unprefixed: true },
    );
    expect(t.exposedName({ pluginId: 'b', tool: 'count' })).toBe('count');
    expect(t.exposedName({ pluginId: 'a', tool: 'echo' })).toBe('a__echo');
    expect(t.resolve('count')).toEqual({ pluginId: 'b', tool: 'count' });
  });

  it('shortens long or invalid names deterministically within 64 characters, never ambiguously', () => {
    const long = { pluginId: 'a-very-long-plugin-identifier-for-testing', tool: 'x'.repeat(80) };
    const long2 = { pluginId: long.pluginId, tool: `${'x'.repeat(79)}y` };
    const odd = { pluginId: 'p', tool: 'has space/and:colon' };
    const refs = [long, long2, odd];
    const t = buildNameTable(refs, { unprefixed: false });
    const names = refs.map((r) => t.exposedName(r) ?? '');
    for (const n of names) {
      expect(n.length).toBeLessThanOrEqual(MAX_TOOL_NAME_CHARS);
      expect(n).toMatch(/^[A-Za-z0-9_.-]+$/);
    }
    expect(new Set(names).size).toBe(3);
    for (const [i, r] of refs.entries()) expect(t.resolve(names[i] ?? '')).toEqual(r);
    // the same input gives the same names, whatever the order
    const again = buildNameTable([...refs].reverse(), { unprefixed: false });
    expect(refs.map((r) => again.exposedName(r))).toEqual(names);
  });

  it('resolves a collision between an unprefixed and a prefixed name by hashing both', () => {
    const a = { pluginId: 'x', tool: 'y__z' }; // unprefixed: "y__z"
    const b = { pluginId: 'y', tool: 'z' }; // prefixed: "y__z" (its tool name "z" is unique too)
    const c = { pluginId: 'q', tool: 'z' }; // makes "z" non-unique, so b stays prefixed
    const t = buildNameTable([a, b, c], { unprefixed: true });
    const na = t.exposedName(a);
    const nb = t.exposedName(b);
    expect(na).not.toBe(nb);
    expect(na).not.toBe('y__z');
    expect(t.resolve(na ?? '')).toEqual(a);
    expect(t.resolve(nb ?? '')).toEqual(b);
  });
});

describe('key scopes', () => {
  it('allows everything when unrestricted, else only the named plugins and tools', () => {
    expect(scopeAllows(undefined, 'a', 'x')).toBe(true);
    const s = { plugins: ['a'], tools: ['b/echo'] };
    expect(scopeAllows(s, 'a', 'anything')).toBe(true);
    expect(scopeAllows(s, 'b', 'echo')).toBe(true);
    expect(scopeAllows(s, 'b', 'fail')).toBe(false);
    expect(scopeAllows(s, 'b')).toBe(true);
    expect(scopeAllows(s, 'c')).toBe(false);
    expect(scopeAllows({ tools: ['bb/echo'] }, 'b')).toBe(false);
  });
});
