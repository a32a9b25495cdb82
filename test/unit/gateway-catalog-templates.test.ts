import { describe, expect, it } from 'vitest';
import { compileTemplates } from '../../src/gateway/catalog.js';
import { MAX_RESOURCE_URI_CHARS } from '../../src/gateway/naming.js';

describe('compileTemplates (the owner of an unlisted plugin URI by its own templates)', () => {
  const owner = compileTemplates([
    { pluginId: 'a', uriTemplate: 'note://b/{id}' },
    { pluginId: 'a', uriTemplate: 'note://{kind}/{id}' },
    { pluginId: 'b', uriTemplate: 'file:///{path}' },
    { pluginId: 'c', uriTemplate: 'file:///{name}' },
    { pluginId: 'd', uriTemplate: 'x://{' },
  ]);

  it('answers the one plugin whose templates match, however many of them do', () => {
    expect(owner('note://b/12')).toBe('a');
    expect(owner('note://z/1')).toBe('a');
  });

  it('answers ambiguous when templates of two plugins match, undefined when none does', () => {
    expect(owner('file:///readme')).toBe('ambiguous');
    expect(owner('other://1')).toBeUndefined();
    expect(owner('note://b/12/extra')).toBeUndefined();
  });

  it('ignores a template the SDK refuses and a URI past the bound', () => {
    expect(owner('x://{')).toBeUndefined();
    expect(owner(`note://b/${'1'.repeat(MAX_RESOURCE_URI_CHARS)}`)).toBeUndefined();
  });
});
