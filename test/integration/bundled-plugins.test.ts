import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListRootsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/manifest/command.js';
import type { HayPluginManifest } from '../../src/manifest/types.js';
import { ManifestValidator, manifestSchemaPath } from '../../src/manifest/validator.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Runs every bundled plugin the way the host does (cwd = plugin folder, argv = parsed startCommand, an
 * explicit environment) and talks MCP to it directly, without the host.
 */
const run = promisify(execFile);
const PLUGINS_DIR = path.resolve('plugins');
const CORE_DIR = path.join(PLUGINS_DIR, 'core');
const BUILT = ['http-api-connector', 'email-notifier', 'remote-knowledge-base'];

const cleanups: (() => Promise<void>)[] = [];
let scratch = '';

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'hay-bundled-'));
  await Promise.all(
    BUILT.map((id) =>
      run('npm', ['run', 'build', '--silent'], { cwd: path.join(CORE_DIR, id), timeout: 120_000 }),
    ),
  );
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await waitFor(() => descendantPids().length === 0, 'all plugin processes to exit').catch(() => undefined);
  if (scratch !== '') await rm(scratch, { recursive: true, force: true });
  expect(descendantPids()).toEqual([]);
});

async function readManifest(pluginDir: string): Promise<HayPluginManifest> {
  return JSON.parse(await readFile(path.join(pluginDir, 'manifest.json'), 'utf8')) as HayPluginManifest;
}

/** The environment the host gives a local plugin: allow-list + HAY_* + mapped configuration. */
function pluginEnv(pluginId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmpdir(),
    LANG: 'C.UTF-8',
    NODE_ENV: 'test',
    HAY_ORG_ID: 'org-test',
    HAY_PLUGIN_ID: pluginId,
    HAY_PLUGIN_DATA_DIR: scratch,
    ...extra,
  };
}

interface Started {
  client: Client;
  stderr: () => string;
}

/** Starts `pluginDir` from its manifest startCommand and connects an MCP client over stdio. */
async function startLocal(
  pluginDir: string,
  env: Record<string, string>,
  options: { roots?: string[] } = {},
): Promise<Started> {
  const manifest = await readManifest(pluginDir);
  const argv = parseCommandLine(manifest.capabilities?.mcp?.startCommand ?? '', 'startCommand');
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('empty startCommand');
  const transport = new StdioClientTransport({ command, args, cwd: pluginDir, env, stderr: 'pipe' });
  let stderrText = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderrText += chunk.toString('utf8');
  });
  const client = new Client(
    { name: 'bundled-plugins-test', version: '1.0.0' },
    { capabilities: options.roots ? { roots: { listChanged: true } } : {} },
  );
  const roots = options.roots;
  if (roots) {
    client.setRequestHandler(ListRootsRequestSchema, () => ({
      roots: roots.map((dir) => ({ uri: pathToFileURL(dir).href, name: 'data' })),
    }));
  }
  cleanups.push(() => client.close());
  await client.connect(transport);
  return { client, stderr: () => stderrText };
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A local HTTP server that records requests and answers with `respond`. */
async function startStub(
  respond: (req: Recorded, res: ServerResponse) => void,
): Promise<{ url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      respond(recorded, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

describe('bundled plugin manifests', () => {
  it('every plugins/core manifest passes the manifest validator', async () => {
    const validator = new ManifestValidator(manifestSchemaPath(PLUGINS_DIR));
    const ids = (await readdir(CORE_DIR, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    expect(ids).toEqual(expect.arrayContaining([...BUILT, 'hay-plugin-test', 'filesystem']));
    for (const id of ids) {
      const file = `plugins/core/${id}/manifest.json`;
      const manifest = validator.parse(
        await readFile(path.join(CORE_DIR, id, 'manifest.json'), 'utf8'),
        file,
      );
      expect(manifest.id).toBe(id);
    }
  });

  it('plugins that use the repository SDK declare no npm dependencies, so the host installs nothing', async () => {
    for (const id of [...BUILT, 'hay-plugin-test']) {
      const pkg = JSON.parse(await readFile(path.join(CORE_DIR, id, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      expect(pkg.dependencies ?? {}, id).toEqual({});
    }
  });
});

describe('hay-plugin-test', () => {
  it('lists echo and echoes the message as text and structured content', async () => {
    const { client } = await startLocal(path.join(CORE_DIR, 'hay-plugin-test'), pluginEnv('hay-plugin-test'));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['echo']);
    const result = await call(client, 'echo', { message: 'hello plugins' });
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: 'text', text: 'hello plugins' }]);
    expect(result.structuredContent).toEqual({ message: 'hello plugins' });
  });
});

describe('http-api-connector', () => {
  const dir = path.join(CORE_DIR, 'http-api-connector');

  it('sends the bearer key, returns {status, body}, and turns non-2xx into a tool error', async () => {
    const stub = await startStub((req, res) => {
      if (req.url.startsWith('/v1/items') && req.method === 'GET') return json(res, 200, { items: [1, 2] });
      if (req.url === '/v1/items' && req.method === 'POST')
        return json(res, 201, { created: JSON.parse(req.body) });
      return json(res, 404, { error: 'no such thing' });
    });
    const { client } = await startLocal(
      dir,
      pluginEnv('http-api-connector', { HTTP_API_BASE_URL: `${stub.url}/v1/`, HTTP_API_KEY: 'key-123' }),
    );
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['http_get', 'http_post']);

    const got = await call(client, 'http_get', { path: '/items', query: { page: '2', q: 'a b' } });
    expect(got.isError).toBeFalsy();
    expect(got.structuredContent).toEqual({ status: 200, body: { items: [1, 2] } });
    expect(stub.requests[0]?.url).toBe('/v1/items?page=2&q=a+b');
    expect(stub.requests[0]?.headers.authorization).toBe('Bearer key-123');

    const posted = await call(client, 'http_post', { path: 'items', body: { name: 'widget' } });
    expect(posted.structuredContent).toEqual({ status: 201, body: { created: { name: 'widget' } } });
    expect(stub.requests[1]?.headers['content-type']).toBe('application/json');
    expect(stub.requests[1]?.headers.authorization).toBe('Bearer key-123');

    const missing = await call(client, 'http_get', { path: '/missing' });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toContain('404');
    expect(missing.structuredContent).toEqual({ status: 404, body: { error: 'no such thing' } });

    const before = stub.requests.length;
    const escape = await call(client, 'http_get', { path: 'http://evil.example/steal' });
    expect(escape.isError).toBe(true);
    expect(text(escape)).toContain('relative');
    expect(stub.requests.length).toBe(before);
  });

  it('reports a timeout as a tool error', async () => {
    const stub = await startStub(() => {
      // never answers
    });
    const { client } = await startLocal(
      dir,
      pluginEnv('http-api-connector', {
        HTTP_API_BASE_URL: stub.url,
        HTTP_API_KEY: 'k',
        HTTP_API_TIMEOUT_MS: '150',
      }),
    );
    const result = await call(client, 'http_get', { path: '/slow' });
    expect(result.isError).toBe(true);
    expect(text(result)).toContain('timed out after 150 ms');
  });

  it('exits with a message naming the missing field when baseUrl is not configured', async () => {
    const started = startLocal(dir, pluginEnv('http-api-connector', { HTTP_API_KEY: 'k' }));
    await expect(started).rejects.toThrow();
    const child = spawn(process.execPath, ['dist/index.js'], {
      cwd: dir,
      env: pluginEnv('http-api-connector', { HTTP_API_KEY: 'k' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('baseUrl is not configured');
  });
});

describe('email-notifier', () => {
  it('POSTs {to, subject, text} to the platform email API with the platform token', async () => {
    const stub = await startStub((req, res) => {
      const body = JSON.parse(req.body) as { to: string };
      if (body.to === 'blocked@example.com') {
        return json(res, 403, { error: { code: 'PERMISSION_DENIED', message: 'recipient is not allowed' } });
      }
      return json(res, 200, { id: 'msg-1', accepted: [body.to] });
    });
    const { client } = await startLocal(
      path.join(CORE_DIR, 'email-notifier'),
      pluginEnv('email-notifier', { HAY_API_URL: stub.url, HAY_API_TOKEN: 'platform-token' }),
    );
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['send_email']);

    const sent = await call(client, 'send_email', { to: 'team@example.com', subject: 'Hi', text: 'Body' });
    expect(sent.isError).toBeFalsy();
    expect(sent.structuredContent).toEqual({ id: 'msg-1', accepted: ['team@example.com'] });
    const request = stub.requests[0];
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/v1/platform/email/send');
    expect(request?.headers.authorization).toBe('Bearer platform-token');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request?.body ?? '')).toEqual({ to: 'team@example.com', subject: 'Hi', text: 'Body' });

    const refused = await call(client, 'send_email', { to: 'blocked@example.com', subject: 'Hi', text: 'x' });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain('403');
    expect(text(refused)).toContain('recipient is not allowed');
  });
});

describe('remote-knowledge-base', () => {
  const dir = path.join(CORE_DIR, 'remote-knowledge-base');

  async function startServer(token: string): Promise<string> {
    const child: ChildProcess = spawn(process.execPath, ['dist/server.js', '--port', '0'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', KB_AUTH_TOKEN: token },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    });
    await waitFor(() => /listening \d+/.test(stderr) || child.exitCode !== null, 'the KB server to listen');
    const port = /listening (\d+)/.exec(stderr)?.[1];
    if (port === undefined) throw new Error(`KB server did not start: ${stderr}`);
    return `http://127.0.0.1:${port}/mcp`;
  }

  /** Headers as the host builds them: manifest connection.headers with ${config.x} replaced. */
  async function headersFor(config: Record<string, string>): Promise<Record<string, string>> {
    const manifest = await readManifest(dir);
    const out: Record<string, string> = {};
    for (const [name, template] of Object.entries(manifest.capabilities?.mcp?.connection?.headers ?? {})) {
      out[name] = template.replace(/\$\{config\.([A-Za-z0-9_-]+)\}/g, (_m, key: string) => config[key] ?? '');
    }
    return out;
  }

  async function connect(url: string, headers: Record<string, string>): Promise<Client> {
    const client = new Client({ name: 'bundled-plugins-test', version: '1.0.0' });
    cleanups.push(() => client.close());
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    return client;
  }

  it('serves search_articles and get_article over Streamable HTTP with the configured token', async () => {
    const url = await startServer('kb-secret');
    const client = await connect(url, await headersFor({ authToken: 'kb-secret' }));
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    const declared = ((await readManifest(dir)).capabilities?.mcp?.tools ?? []).map((t) => t.name).sort();
    expect(names).toEqual(declared);

    const search = await call(client, 'search_articles', { query: 'reset password' });
    expect(search.isError).toBeFalsy();
    const results = (search.structuredContent as { results: { id: string }[] }).results;
    expect(results[0]?.id).toBe('reset-password');

    const article = await call(client, 'get_article', { id: 'refund-policy' });
    expect((article.structuredContent as { title: string }).title).toBe('Refund policy');

    const unknown = await call(client, 'get_article', { id: 'nope' });
    expect(unknown.isError).toBe(true);
  });

  it('rejects a wrong token', async () => {
    const url = await startServer('kb-secret');
    await expect(connect(url, await headersFor({ authToken: 'wrong' }))).rejects.toMatchObject({ code: 401 });
    await expect(connect(url, {})).rejects.toMatchObject({ code: 401 });
  });
});

describe('filesystem (third-party server)', () => {
  it('installs from package.json and is confined to the root the client offers', async () => {
    const copy = path.join(scratch, 'filesystem-plugin');
    await cp(path.join(CORE_DIR, 'filesystem'), copy, {
      recursive: true,
      filter: (src) => !src.includes(`${path.sep}node_modules`),
    });
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: copy,
      timeout: 120_000,
    });

    const dataDir = await realpath(await mkdtemp(path.join(scratch, 'data-')));
    await writeFile(path.join(dataDir, 'note.txt'), 'hello');
    const { client } = await startLocal(copy, pluginEnv('filesystem', { HAY_PLUGIN_DATA_DIR: dataDir }), {
      roots: [dataDir],
    });

    await waitFor(async () => {
      const allowed = await call(client, 'list_allowed_directories', {});
      return text(allowed).includes(dataDir);
    }, 'the server to adopt the offered root');

    const listing = await call(client, 'list_directory', { path: dataDir });
    expect(listing.isError).toBeFalsy();
    expect(text(listing)).toContain('[FILE] note.txt');

    const outside = await call(client, 'read_text_file', { path: path.join(copy, 'manifest.json') });
    expect(outside.isError).toBe(true);
    expect(text(outside)).toMatch(/access denied/i);

    // A client that offers no roots gets no directory at all.
    const noRoots = await startLocal(copy, pluginEnv('filesystem', { HAY_PLUGIN_DATA_DIR: dataDir }));
    const denied = await call(noRoots.client, 'list_directory', { path: dataDir });
    expect(denied.isError).toBe(true);
  }, 150_000);
});
