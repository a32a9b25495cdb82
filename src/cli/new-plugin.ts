import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../paths.js';

const TEMPLATES = ['stdio', 'remote', 'http-api'] as const;
type Template = (typeof TEMPLATES)[number];

export interface NewPluginIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

/**
 * `hay-plugins new <name> [--template stdio|remote|http-api] [--dir <parent>]`: writes `<parent>/<name>/` with a manifest,
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
        `unknown argument "${a ?? ''}"; usage: hay-plugins new <name> [--template stdio|remote|http-api] [--dir <parent>]\n`,
      );
      return 1;
    }
  }
  if (name === undefined || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name) || name.length > 100) {
    io.err(
      'usage: hay-plugins new <name> [--template stdio|remote|http-api] [--dir <parent>]; <name> is lowercase words joined by hyphens\n',
    );
    return 1;
  }
  if (!(TEMPLATES as readonly string[]).includes(template)) {
    io.err(`unknown template "${template}"; available: ${TEMPLATES.join(', ')}\n`);
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

/**
 * The files of each template. stdio: an SDK server the host starts. remote: a Streamable HTTP server you
 * run yourself (`npm start`), reached at its URL (`serverUrl` overrides the manifest's per organization).
 * http-api: a stdio server calling an organization's own HTTP API (`baseUrl`, encrypted `apiKey`) through
 * the host's egress proxy (`httpFetch`).
 */
function files(name: string, template: Template): Record<string, string> {
  const root = packageRoot();
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  const common = {
    id: name,
    name: title(name),
    version: '0.1.0',
    description: `${title(name)}: a Hay plugin.`,
    type: ['mcp-connector'],
  };
  const local = {
    entry: 'mcp/index.js',
    capabilities: {
      mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node mcp/index.js' },
    },
  };
  const manifest =
    template === 'remote'
      ? {
          ...common,
          capabilities: {
            mcp: { connection: { type: 'remote', url: 'http://127.0.0.1:3100/mcp' }, transport: 'http' },
          },
          configSchema: {
            serverUrl: {
              type: 'url',
              label: 'Server URL',
              description: "Your server's MCP endpoint; unset: the manifest's connection.url",
            },
          },
        }
      : template === 'http-api'
        ? {
            ...common,
            ...local,
            permissions: { network: { all: true } },
            configSchema: {
              baseUrl: {
                type: 'url',
                label: 'API base URL',
                description: 'Root of the API, e.g. https://api.example.com/v1',
                required: true,
                env: 'API_BASE_URL',
              },
              apiKey: {
                type: 'string',
                label: 'API key',
                description: 'Sent as Authorization: Bearer <apiKey>',
                encrypted: true,
                env: 'API_KEY',
              },
            },
          }
        : {
            ...common,
            ...local,
            configSchema: {
              greeting: { type: 'string', label: 'Greeting', default: 'Hello', env: 'GREETING' },
            },
          };
  const server =
    template === 'remote'
      ? remoteServer(name)
      : template === 'http-api'
        ? httpApiServer(name)
        : stdioServer(name);
  const test = template === 'remote' ? remoteTest() : template === 'http-api' ? httpApiTest() : stdioTest();
  return {
    'manifest.json': json(manifest),
    'package.json': json({
      name: `hay-plugin-${name}`,
      version: '0.1.0',
      private: true,
      type: 'module',
      scripts: {
        test: 'node --test test/',
        ...(template === 'remote' ? { start: 'node server/index.js' } : {}),
      },
      peerDependencies: { '@hay/plugin-sdk': '^0.1.0' },
      devDependencies: {
        '@hay/plugin-sdk': `file:${path.join(root, 'packages', 'plugin-sdk')}`,
        'hay-plugins': `file:${root}`,
      },
    }),
    [template === 'remote' ? 'server/index.js' : 'mcp/index.js']: server,
    'test/plugin.test.mjs': test,
    'README.md': `# ${title(name)}

A Hay plugin (template \`${template}\`). \`npm install\`, then \`npx hay-plugins validate .\` and \`npm test\`;
\`npx hay-plugins dev .\` serves it and lets you call its tools. ${
      template === 'remote'
        ? 'The server runs on your side: `npm start` (PORT, default 3100); organizations point `serverUrl` at it. '
        : ''
    }See the plugin author's reference (docs/PLUGIN_API.md in the host) for every manifest field.
`,
    '.gitignore': 'node_modules/\ndist/\n',
  };
}

function stdioServer(name: string): string {
  return `// MCP server written with @hay/plugin-sdk. stdout carries MCP: log with ctx.log (stderr).
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
`;
}

function stdioTest(): string {
  return `// Runs the plugin on a real Hay host in this process (embedded database, temp folders).
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
`;
}

function remoteServer(name: string): string {
  return `// A remote MCP server (Streamable HTTP at /mcp) written with @hay/plugin-sdk. You run it (npm start);
// the host connects to it at manifest.json's connection.url, or an organization's serverUrl.
import { pathToFileURL } from 'node:url';
import { definePlugin, z } from '@hay/plugin-sdk';

export const plugin = definePlugin({ name: '${name}', version: '0.1.0' }).tool(
  'greet',
  { description: 'Greets someone', input: { name: z.string().min(1) } },
  ({ name }) => \`Hello from the remote server, \${name}!\`,
);

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const serving = await plugin.serveHttp({ port: Number(process.env.PORT ?? 3100) });
  process.stderr.write(\`listening at \${serving.url}\\n\`);
}
`;
}

function remoteTest(): string {
  return `// Starts the remote server on a free port and a real Hay host in this process that reaches it (the host's
// egress policy refuses loopback unless the operator allows it: egressAllow does that here).
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startPluginHost } from '@hay/plugin-sdk/testing';
import { plugin } from '../server/index.js';

const pluginDir = fileURLToPath(new URL('..', import.meta.url));

test('greet is served by the remote server through the host', async () => {
  const server = await plugin.serveHttp({ port: 0 });
  const host = await startPluginHost({
    pluginDir,
    configuration: { serverUrl: server.url },
    config: { egressAllow: \`127.0.0.1:\${server.port}\` },
  });
  try {
    assert.equal(await host.callText('greet', { name: 'Ada' }), 'Hello from the remote server, Ada!');
  } finally {
    await host.close();
    await server.close();
  }
});
`;
}

function httpApiServer(name: string): string {
  return `// MCP server calling an organization's HTTP API. httpFetch goes through the host's egress proxy (the
// only way out for a sandboxed plugin). \`config\` mirrors manifest.json's configSchema.
import { definePlugin, httpFetch, z } from '@hay/plugin-sdk';

await definePlugin({
  name: '${name}',
  version: '0.1.0',
  config: {
    baseUrl: { type: 'url', env: 'API_BASE_URL', required: true },
    apiKey: { type: 'string', env: 'API_KEY', encrypted: true },
  },
})
  .tool('get_item', { description: 'Reads one item by id', input: { id: z.string().min(1) } }, async ({ id }, ctx) => {
    const url = new URL(\`items/\${encodeURIComponent(id)}\`, ctx.config.baseUrl.replace(/\\/?$/, '/'));
    const res = await httpFetch(url.toString(), {
      headers: { accept: 'application/json', ...(ctx.config.apiKey ? { authorization: \`Bearer \${ctx.config.apiKey}\` } : {}) },
      signal: ctx.signal,
    });
    if (res.status !== 200) throw new Error(\`the API answered HTTP \${res.status}\`);
    return JSON.parse(res.text);
  })
  .run();
`;
}

function httpApiTest(): string {
  return `// A stand-in for the organization's API on a free port, and a real Hay host in this process whose plugin
// calls it (the egress policy refuses loopback unless the operator allows it: egressAllow does that here).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startPluginHost } from '@hay/plugin-sdk/testing';

const pluginDir = fileURLToPath(new URL('..', import.meta.url));

test('get_item reads the item from the API with the key', async () => {
  const api = createServer((req, res) => {
    const ok = req.url === '/items/42' && req.headers.authorization === 'Bearer k-123';
    res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ok ? { id: '42', name: 'Widget' } : { error: 'not found' }));
  });
  await new Promise((resolve) => api.listen(0, '127.0.0.1', resolve));
  const { port } = api.address();
  const host = await startPluginHost({
    pluginDir,
    configuration: { baseUrl: \`http://127.0.0.1:\${port}\`, apiKey: 'k-123' },
    config: { egressAllow: \`127.0.0.1:\${port}\` },
  });
  try {
    assert.deepEqual(JSON.parse(await host.callText('get_item', { id: '42' })), { id: '42', name: 'Widget' });
  } finally {
    await host.close();
    api.closeAllConnections();
    await new Promise((resolve) => api.close(resolve));
  }
});
`;
}

function title(id: string): string {
  return id
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}
