import { describe, expect, it } from 'vitest';
import { StderrTail } from '../../src/runtime/process/stderr-tail.js';

describe('StderrTail', () => {
  const env = {
    HAY_API_TOKEN: 'tok-0123456789',
    MY_API_KEY: 'sk-live-secret',
    HAY_PLUGIN_ID: 'demo',
    PATH: '/usr/bin',
  };

  it('keeps the last lines, without stacks, secrets or paths outside the plugin folder', () => {
    const tail = new StderrTail({ pluginDir: '/srv/plugins/core/demo/', env, maxLines: 3 });
    for (const line of [
      'first line is dropped by the bound',
      'using key sk-live-secret and token tok-0123456789',
      "Error: ENOENT: no such file, open '/var/lib/hay/plugin-data/org/demo/x.json'",
      '    at Object.openSync (node:fs:573:3)',
      '    at file:///srv/plugins/core/demo/mcp/index.js:3:1',
      'loaded file:///srv/plugins/core/demo/mcp/index.js and /srv/plugins/core/demo',
      '\u001b[31mred\u001b[0m and/or plugin demo',
    ])
      tail.push(line);
    expect(tail.lines()).toEqual([
      "Error: ENOENT: no such file, open '<path>'",
      'loaded ./mcp/index.js and .',
      'red and/or plugin demo',
    ]);
    const all = new StderrTail({ pluginDir: '/srv/plugins/core/demo', env });
    all.push('using key sk-live-secret and token tok-0123456789');
    expect(all.lines()).toEqual(['using key [redacted] and token [redacted]']);
  });

  it('cuts long lines and drops Node source excerpts', () => {
    const tail = new StderrTail({ pluginDir: '/p', env: {}, maxLineChars: 10 });
    tail.push('node:internal/modules/esm/resolve:873');
    tail.push('  throw new ERR_MODULE_NOT_FOUND(packageName);');
    tail.push('  ^');
    tail.push('x'.repeat(50));
    expect(tail.lines()).toEqual([`${'x'.repeat(10)}…`]);
  });
});
