import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../paths.js';

const TEMPLATES = ['stdio'] as const;
type Template = (typeof TEMPLATES)[number];

export interface NewPluginIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

/**
 * `hay-plugins new <name> [--template stdio] [--dir <parent>]`: writes `<parent>/<name>/` with a manifest,
 * an MCP server written with @hay/plugin-sdk, and a test (`npm test`, node:test) that runs the plugin on a
 * real in-process host through @hay/plugin-sdk/testing. The devDependencies point at this host's checkout
 * (`file:`), so `npm install` needs no registry. Exit 1 for a bad name, an unknown template or an existing
 * folder (nothing is written then).
 */
export async function newPluginCommand(args: readonly string[], io: NewPluginIo): Promise<number> {
  let name: string | undefined;
  let template: string = 'stdio';
  let parent = '.';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--template') template = args[++i] ?? '';
    else if (a === '--dir') parent = args[++i] ?? '';
    else if (a !== undefined && !a.startsWith('--') && name === undefined) name = a;
    else {
      io.err(
        `unknown argument "${a ?? ''}"; usage: hay-plugins new <name> [--template stdio] [--dir <parent>]\n`,
      );
      return 1;
    }
  }
  if (name === undefined || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name) || name.length > 100) {
    io.err(
      'usage: hay-plugins new <name> [--template stdio] [--dir <parent>]; <name> is lowercase words joined by hyphens\n',
    );
    return 1;
  }
  if (!(TEMPLATES as readonly string[]).includes(template)) {
    io.err(
      `unknown template "${template}"; available: ${TEMPLATES.join(', ')} (remote and http-api are not available yet)\n`,
    );
    return 1;
  }
  const dir = path.resolve(parent, name);
  if (existsSync(dir)) {
    io.err(`${dir} already exists; choose another name or --dir\n`);
    return 1;
  }
  for (const [rel, content] of Object.entries(files(name, template as Template))) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  io.out(
    `created ${dir}\nnext:\n  cd ${path.relative(process.cwd(), dir) || '.'}\n  npm install\n  npx hay-plugins validate .\n  npm test\n`,
  );
  return 0;
}

function files(name: string, _template: Template): Record<string, string> {
  const root = packageRoot();
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    'manifest.json': json({
      id: name,
      name: title(name),
      version: '0.1.0',
      description: `${title(name)}: a Hay plugin.`,
      type: ['mcp-connector'],
      entry: 'mcp/index.js',
      capabilities: {
        mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node mcp/index.js' },
      },
      configSchema: {
        greeting: { type: 'string', label: 'Greeting', default: 'Hello', env: 'GREETING' },
      },
    }),
    'package.json': json({
      name: `hay-plugin-${name}`,
      version: '0.1.0',
      private: true,
      type: 'module',
      scripts: { test: 'node --test test/' },
      peerDependencies: { '@hay/plugin-sdk': '^0.1.0' },
      devDependencies: {
        '@hay/plugin-sdk': `file:${path.join(root, 'packages', 'plugin-sdk')}`,
        'hay-plugins': `file:${root}`,
      },
    }),
    'mcp/index.js': `// MCP server written with @hay/plugin-sdk. stdout carries MCP: log with ctx.log (stderr).
// \`config\` mirrors manifest.json's configSchema (same names, types, env).
import { definePlugin, z } from '@hay/plugin-sdk';

await definePlugin({
  name: '${name}',
  version: '0.1.0',
  config: { greeting: { type: 'string', env: 'GREETING', default: 'Hello' } },
})
  .tool('greet', { description: 'Greets someone', input: { name: z.string().min(1) } }, ({ name }, ctx) => {
    return \`\${ctx.config.greeting}, \${name}!\`;
  })
  .run();
`,
    'test/plugin.test.mjs': `// Runs the plugin on a real Hay host in this process (embedded database, temp folders).
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startPluginHost } from '@hay/plugin-sdk/testing';

const pluginDir = fileURLToPath(new URL('..', import.meta.url));

test('greet answers with the configured greeting', async () => {
  const host = await startPluginHost({ pluginDir, configuration: { greeting: 'Hello' } });
  try {
    assert.equal(await host.callText('greet', { name: 'Ada' }), 'Hello, Ada!');
  } finally {
    await host.close();
  }
});
`,
    'README.md': `# ${title(name)}

A Hay plugin. \`npm install\`, then \`npx hay-plugins validate .\` and \`npm test\`. See the plugin author's
reference (docs/PLUGIN_API.md in the host) for every manifest field.
`,
    '.gitignore': 'node_modules/\ndist/\n',
  };
}

function title(id: string): string {
  return id
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}
