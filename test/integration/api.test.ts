import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../src/index.js';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * The plugins API over real HTTP: the guide's integration test, every error of the contract with its
 * HTTP status, organization isolation, key revocation, and each plugins.* procedure.
 */

interface TrpcBody {
  result?: { data: unknown };
  error?: {
    message: string;
    data: { code: string; httpStatus: number; hayCode?: string; details?: Record<string, unknown> };
  };
}

const CALL_TIMEOUT_MS = 3_000;
let t: TestHost;
let gateDir: string;

beforeAll(async () => {
  gateDir = mkdtempSync(path.join(os.tmpdir(), 'hay-gate-'));
  t = await startTestHost({
    corePlugins: ['hay-plugin-test', 'http-api-connector'],
    plugins: {
      'core/toolkit': toolkitPlugin('toolkit'),
      'core/solo': toolkitPlugin('solo', { runtime: { maxConcurrentInstances: 1 } }),
      'core/limited': toolkitPlugin('limited', { runtime: { rateLimitPerMinute: 2 } }),
    },
    config: { queueTimeoutMs: 300, callTimeoutMs: CALL_TIMEOUT_MS },
  });
});

afterAll(async () => {
  await t?.close();
  rmSync(gateDir, { recursive: true, force: true });
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  expect(descendantPids()).toEqual([]);
});

/** One tRPC call as curl makes it: POST with a JSON body, or GET with ?input=. */
async function raw(
  token: string | undefined,
  proc: string,
  input?: unknown,
  method: 'GET' | 'POST' = 'POST',
) {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let res: Response;
  if (method === 'GET') {
    const query = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`;
    res = await fetch(`${t.url}/trpc/${proc}${query}`, { headers });
  } else {
    headers['content-type'] = 'application/json';
    res = await fetch(`${t.url}/trpc/${proc}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(input ?? {}),
    });
  }
  return { status: res.status, body: (await res.json()) as TrpcBody };
}

function expectError(r: { status: number; body: TrpcBody }, status: number, code: string, message?: RegExp) {
  expect(r.body.result).toBeUndefined();
  expect(r.status).toBe(status);
  expect(r.body.error?.data.code).toBe(code);
  expect(r.body.error?.data.httpStatus).toBe(status);
  if (message) expect(r.body.error?.message).toMatch(message);
  // no stack traces or internals leak to callers
  expect(JSON.stringify(r.body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
}

/** The tRPC code of a rejected typed-client call. */
async function codeOf(p: Promise<unknown>): Promise<{ code: string | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TRPCClientError) {
      const e = err as TRPCClientError<AppRouter>;
      return { code: e.data?.code, message: e.message };
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

const echo = (pluginId: string, message: string) => ({ pluginId, toolName: 'echo', arguments: { message } });

describe("the guide's integration test", () => {
  it('enables hay-plugin-test with a configuration and gets the message back from echo', async () => {
    const { hay } = await t.createOrganization('guide');
    const result = await hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    expect(result.success).toBe(true);
    const toolResult = await hay.plugins.invokeTool.mutate({
      pluginId: 'hay-plugin-test',
      toolName: 'echo',
      arguments: { message: 'hello from the guide' },
    });
    expect(toolResult.content).toEqual([{ type: 'text', text: 'hello from the guide' }]);
    expect(toolResult.structuredContent).toEqual({ message: 'hello from the guide' });
    expect(toolResult.isError).toBeFalsy();
  });

  it('enables a plugin with a configSchema using a real configuration, defaults applied', async () => {
    const { hay } = await t.createOrganization('guide-config');
    const configuration = { baseUrl: 'https://api.example.com/v1', apiKey: 'test' };
    expect(await hay.plugins.enable.mutate({ pluginId: 'http-api-connector', configuration })).toEqual({
      success: true,
    });
    const got = await hay.plugins.get.query({ pluginId: 'http-api-connector' });
    expect(got.enabled).toBe(true);
    expect(got.configuration).toEqual({
      baseUrl: 'https://api.example.com/v1',
      apiKey: { set: true },
      timeoutMs: 10000,
    });
  });

  it('answers the curl shapes: POST body in, {"result":{"data":CallToolResult}} out; GET with ?input=', async () => {
    const { apiKey } = await t.createOrganization('curl');
    expect(await raw(apiKey, 'plugins.enable', { pluginId: 'hay-plugin-test', configuration: {} })).toEqual({
      status: 200,
      body: { result: { data: { success: true } } },
    });
    const invoked = await raw(apiKey, 'plugins.invokeTool', echo('hay-plugin-test', 'hi'));
    expect(invoked).toEqual({
      status: 200,
      body: {
        result: { data: { content: [{ type: 'text', text: 'hi' }], structuredContent: { message: 'hi' } } },
      },
    });
    const got = await raw(apiKey, 'plugins.get', { pluginId: 'hay-plugin-test' }, 'GET');
    expect(got.status).toBe(200);
    expect(got.body.result?.data).toMatchObject({ id: 'hay-plugin-test', enabled: true });
    const listed = await raw(apiKey, 'plugins.list', {}, 'GET');
    expect(listed.status).toBe(200);
    expect((listed.body.result?.data as { id: string }[]).map((p) => p.id)).toContain('hay-plugin-test');
  });
});

describe('UNAUTHORIZED (401)', () => {
  it('rejects a call without a token, naming the header', async () => {
    expectError(
      await raw(undefined, 'plugins.list', undefined, 'GET'),
      401,
      'UNAUTHORIZED',
      /Authorization: Bearer/,
    );
    expectError(await raw(undefined, 'admin.listOrganizations', undefined, 'GET'), 401, 'UNAUTHORIZED');
    expect((await codeOf(t.client('').plugins.list.query())).code).toBe('UNAUTHORIZED');
  });

  it('rejects a wrong token', async () => {
    expectError(
      await raw('hay_not-a-real-key', 'plugins.invokeTool', echo('hay-plugin-test', 'x')),
      401,
      'UNAUTHORIZED',
      /invalid or revoked/,
    );
    expect((await codeOf(t.client('nope').plugins.list.query())).code).toBe('UNAUTHORIZED');
  });

  it('rejects a key at once after admin.revokeApiKey', async () => {
    const { organizationId, hay } = await t.createOrganization('revoke');
    await hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    const created = await t.admin.admin.createApiKey.mutate({ organizationId, role: 'member' });
    expect(created.apiKey).not.toBe('');
    const member = t.client(created.apiKey);
    expect((await member.plugins.invokeTool.mutate(echo('hay-plugin-test', 'before'))).content).toEqual([
      { type: 'text', text: 'before' },
    ]);
    const revoked = await t.admin.admin.revokeApiKey.mutate({ keyId: created.keyId });
    expect(revoked).toMatchObject({ success: true, keyId: created.keyId });
    expect(revoked.revokedAt).not.toBeNull();
    expectError(
      await raw(created.apiKey, 'plugins.invokeTool', echo('hay-plugin-test', 'after')),
      401,
      'UNAUTHORIZED',
    );
    expect((await codeOf(member.plugins.list.query())).code).toBe('UNAUTHORIZED');
    // the organization's other key still works
    expect((await hay.plugins.list.query()).length).toBeGreaterThan(0);
  });
});

describe('FORBIDDEN (403)', () => {
  it('refuses the admin token on plugins.*', async () => {
    expectError(
      await raw(t.adminToken, 'plugins.list', undefined, 'GET'),
      403,
      'FORBIDDEN',
      /organization API key/,
    );
    expectError(
      await raw(t.adminToken, 'plugins.invokeTool', echo('hay-plugin-test', 'x')),
      403,
      'FORBIDDEN',
    );
  });

  it('refuses an organization key on admin.*', async () => {
    const { apiKey, hay } = await t.createOrganization('no-admin');
    expectError(
      await raw(apiKey, 'admin.listOrganizations', undefined, 'GET'),
      403,
      'FORBIDDEN',
      /admin token/,
    );
    expectError(await raw(apiKey, 'admin.createOrganization', { name: 'sneaky' }), 403, 'FORBIDDEN');
    expect((await codeOf(hay.admin.rescanPlugins.mutate())).code).toBe('FORBIDDEN');
  });

  it('lets a member key use plugins but not enable, configure or disable them', async () => {
    const { organizationId, hay } = await t.createOrganization('roles');
    await hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    const { apiKey } = await t.admin.admin.createApiKey.mutate({ organizationId, role: 'member' });
    expectError(
      await raw(apiKey, 'plugins.enable', { pluginId: 'toolkit', configuration: {} }),
      403,
      'FORBIDDEN',
      /admin role/,
    );
    expectError(await raw(apiKey, 'plugins.disable', { pluginId: 'hay-plugin-test' }), 403, 'FORBIDDEN');
    expectError(
      await raw(apiKey, 'plugins.configure', { pluginId: 'hay-plugin-test', configuration: {} }),
      403,
      'FORBIDDEN',
    );
    const member = t.client(apiKey);
    expect((await member.plugins.invokeTool.mutate(echo('hay-plugin-test', 'member'))).content).toEqual([
      { type: 'text', text: 'member' },
    ]);
    expect((await member.plugins.list.query()).find((p) => p.id === 'toolkit')?.enabled).toBe(false);
  });
});

describe('NOT_FOUND (404)', () => {
  it('names an unknown plugin', async () => {
    const { apiKey } = await t.createOrganization('nf');
    expectError(
      await raw(apiKey, 'plugins.get', { pluginId: 'no-such-plugin' }, 'GET'),
      404,
      'NOT_FOUND',
      /plugin "no-such-plugin" not found/,
    );
    expectError(
      await raw(apiKey, 'plugins.enable', { pluginId: 'no-such-plugin', configuration: {} }),
      404,
      'NOT_FOUND',
    );
    expectError(await raw(apiKey, 'plugins.invokeTool', echo('no-such-plugin', 'x')), 404, 'NOT_FOUND');
  });

  it('names an unknown tool of an enabled plugin', async () => {
    const { apiKey, hay } = await t.createOrganization('nf-tool');
    await hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    const r = await raw(apiKey, 'plugins.invokeTool', {
      pluginId: 'hay-plugin-test',
      toolName: 'reverse',
      arguments: {},
    });
    expectError(r, 404, 'NOT_FOUND', /hay-plugin-test has no tool named "reverse"/);
    expect(r.body.error?.data.hayCode).toBe('TOOL_NOT_FOUND');
  });
});

describe('organization isolation with a custom plugin', () => {
  it("shows plugins/custom/<orgA>/ only to A; B can't see, get, enable, configure or invoke it", async () => {
    const a = await t.createOrganization('org-a');
    const b = await t.createOrganization('org-b');
    t.writePlugin(`custom/${a.organizationId}/private-tools`, toolkitPlugin('private-tools'));
    // not registered until a rescan
    expect((await a.hay.plugins.list.query()).map((p) => p.id)).not.toContain('private-tools');
    const report = await t.admin.admin.rescanPlugins.mutate();
    expect(report.invalid).toEqual([]);

    const listA = await a.hay.plugins.list.query();
    const mine = listA.find((p) => p.id === 'private-tools');
    expect(mine).toMatchObject({ sourceType: 'custom', status: 'ok', enabled: false });
    expect(listA.some((p) => p.id === 'hay-plugin-test' && p.sourceType === 'core')).toBe(true);
    expect((await b.hay.plugins.list.query()).map((p) => p.id)).not.toContain('private-tools');

    // B's answers for A's plugin are exactly those for a plugin that does not exist
    const calls: [string, 'GET' | 'POST', (id: string) => unknown][] = [
      ['plugins.get', 'GET', (id) => ({ pluginId: id })],
      ['plugins.metrics', 'GET', (id) => ({ pluginId: id })],
      ['plugins.listTools', 'GET', (id) => ({ pluginId: id })],
      ['plugins.enable', 'POST', (id) => ({ pluginId: id, configuration: {} })],
      ['plugins.configure', 'POST', (id) => ({ pluginId: id, configuration: {} })],
      ['plugins.disable', 'POST', (id) => ({ pluginId: id })],
      ['plugins.invokeTool', 'POST', (id) => echo(id, 'x')],
    ];
    for (const [proc, method, input] of calls) {
      const hidden = await raw(b.apiKey, proc, input('private-tools'), method);
      const unknown = await raw(b.apiKey, proc, input('missing-tools'), method);
      expectError(hidden, 404, 'NOT_FOUND');
      expect(JSON.stringify(hidden.body).replaceAll('private-tools', 'X')).toBe(
        JSON.stringify(unknown.body).replaceAll('missing-tools', 'X'),
      );
    }

    // A uses it normally; B's attempts changed nothing
    await a.hay.plugins.enable.mutate({ pluginId: 'private-tools', configuration: {} });
    expect((await a.hay.plugins.invokeTool.mutate(echo('private-tools', 'mine'))).content).toEqual([
      { type: 'text', text: 'mine' },
    ]);
    expectError(await raw(b.apiKey, 'plugins.invokeTool', echo('private-tools', 'x')), 404, 'NOT_FOUND');
    expect((await b.hay.plugins.instances.query()).map((i) => i.pluginId)).not.toContain('private-tools');
    expect((await a.hay.plugins.instances.query()).map((i) => i.pluginId)).toContain('private-tools');
  });
});

describe('PRECONDITION_FAILED (412)', () => {
  it('refuses a call to a plugin the organization has not enabled', async () => {
    const { apiKey } = await t.createOrganization('not-enabled');
    expectError(
      await raw(apiKey, 'plugins.invokeTool', echo('hay-plugin-test', 'x')),
      412,
      'PRECONDITION_FAILED',
      /not enabled.*plugins\.enable/,
    );
    expectError(
      await raw(apiKey, 'plugins.listTools', { pluginId: 'hay-plugin-test' }, 'GET'),
      412,
      'PRECONDITION_FAILED',
    );
  });

  it('reports a failed build with the command and its output, on every call', async () => {
    const { organizationId, apiKey, hay } = await t.createOrganization('broken-build');
    t.writePlugin(
      `custom/${organizationId}/broken-build`,
      toolkitPlugin('broken-build', {
        capabilities: {
          mcp: {
            connection: { type: 'local' },
            transport: 'stdio',
            startCommand: 'node server.mjs',
            buildCommand: `node -e "process.stderr.write('error TS2304: Cannot find name foo'); process.exit(2)"`,
          },
        },
      }),
    );
    await t.admin.admin.rescanPlugins.mutate();
    await hay.plugins.enable.mutate({ pluginId: 'broken-build', configuration: {} });
    for (let i = 0; i < 2; i++) {
      const r = await raw(apiKey, 'plugins.invokeTool', echo('broken-build', 'x'));
      expectError(
        r,
        412,
        'PRECONDITION_FAILED',
        /build of plugin broken-build failed: .*exited with code 2.*TS2304: Cannot find name foo/,
      );
      expect(r.body.error?.data.hayCode).toBe('BUILD_FAILED');
    }
    const listed = (await hay.plugins.list.query()).find((p) => p.id === 'broken-build');
    expect(listed?.install.built).toBe(false);
    expect(listed?.install.error).toMatch(/TS2304/);
  });

  it('reports a failed install with the reason', async () => {
    const { organizationId, apiKey, hay } = await t.createOrganization('broken-install');
    t.writePlugin(
      `custom/${organizationId}/broken-install`,
      toolkitPlugin('broken-install', {
        capabilities: {
          mcp: {
            connection: { type: 'local' },
            transport: 'stdio',
            startCommand: 'node server.mjs',
            installCommand: `node -e "process.stderr.write('404 Not Found: left-pad@99'); process.exit(1)"`,
          },
        },
      }),
    );
    await t.admin.admin.rescanPlugins.mutate();
    await hay.plugins.enable.mutate({ pluginId: 'broken-install', configuration: {} });
    for (let i = 0; i < 2; i++) {
      const r = await raw(apiKey, 'plugins.invokeTool', echo('broken-install', 'x'));
      expectError(
        r,
        412,
        'PRECONDITION_FAILED',
        /install of plugin broken-install failed: .*exited with code 1.*left-pad@99/,
      );
      expect(r.body.error?.data.hayCode).toBe('INSTALL_FAILED');
    }
  });
});

describe('BAD_REQUEST (400)', () => {
  it('validates the configuration against configSchema, naming the field', async () => {
    const { apiKey, hay } = await t.createOrganization('bad-config');
    expectError(
      await raw(apiKey, 'plugins.enable', { pluginId: 'http-api-connector', configuration: { apiKey: 'k' } }),
      400,
      'BAD_REQUEST',
      /configuration\.baseUrl is required/,
    );
    expectError(
      await raw(apiKey, 'plugins.enable', {
        pluginId: 'http-api-connector',
        configuration: { baseUrl: 'https://x.example', apiKey: 'k', timeoutMs: 'soon' },
      }),
      400,
      'BAD_REQUEST',
      /configuration\.timeoutMs/,
    );
    expectError(
      await raw(apiKey, 'plugins.enable', { pluginId: 'hay-plugin-test', configuration: { apiKey: 'test' } }),
      400,
      'BAD_REQUEST',
      /configuration\.apiKey is not a field/,
    );
    // nothing was enabled by the failed attempts
    expect((await hay.plugins.get.query({ pluginId: 'http-api-connector' })).enabled).toBe(false);
  });

  it('validates tool arguments against the tool schema, naming the path', async () => {
    const { apiKey, hay } = await t.createOrganization('bad-args');
    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    const r = await raw(apiKey, 'plugins.invokeTool', {
      pluginId: 'toolkit',
      toolName: 'count',
      arguments: { n: 0 },
    });
    expectError(r, 400, 'BAD_REQUEST', /invalid arguments for tool count: \/n must be >= 1/);
    expectError(
      await raw(apiKey, 'plugins.invokeTool', {
        pluginId: 'toolkit',
        toolName: 'echo',
        arguments: { message: 5 },
      }),
      400,
      'BAD_REQUEST',
      /\/message/,
    );
    // malformed input at the edge
    expectError(
      await raw(apiKey, 'plugins.invokeTool', { pluginId: 'Not An Id', toolName: 'echo' }),
      400,
      'BAD_REQUEST',
      /pluginId/,
    );
  });
});

describe('TOO_MANY_REQUESTS (429)', () => {
  it('answers capacity when every instance slot stays busy past queueTimeoutMs, then recovers', async () => {
    const a = await t.createOrganization('cap-a');
    const b = await t.createOrganization('cap-b');
    await a.hay.plugins.enable.mutate({ pluginId: 'solo', configuration: {} });
    await b.hay.plugins.enable.mutate({ pluginId: 'solo', configuration: {} });
    const gate = path.join(gateDir, 'capacity');
    const held = a.hay.plugins.invokeTool.mutate({
      pluginId: 'solo',
      toolName: 'gate',
      arguments: { file: gate },
    });
    await waitFor(
      async () =>
        (await a.hay.plugins.instances.query()).some((i) => i.pluginId === 'solo' && i.inFlight > 0),
      "org A's call to hold the only instance",
    );
    const r = await raw(b.apiKey, 'plugins.invokeTool', echo('solo', 'b'));
    expectError(r, 429, 'TOO_MANY_REQUESTS', /solo is at its limit of 1 concurrent instance/);
    expect(r.body.error?.data.hayCode).toBe('CAPACITY');
    writeFileSync(gate, '');
    expect((await held).content).toEqual([{ type: 'text', text: 'opened' }]);
    // the idle instance of A is evicted for B
    expect((await b.hay.plugins.invokeTool.mutate(echo('solo', 'b again'))).content).toEqual([
      { type: 'text', text: 'b again' },
    ]);
    expect(existsSync(gate)).toBe(true);
  });

  it('answers rate limited past the plugin rateLimitPerMinute, with retryAfterMs', async () => {
    const { apiKey, hay } = await t.createOrganization('rate');
    await hay.plugins.enable.mutate({ pluginId: 'limited', configuration: {} });
    expect((await raw(apiKey, 'plugins.invokeTool', echo('limited', '1'))).status).toBe(200);
    expect((await raw(apiKey, 'plugins.invokeTool', echo('limited', '2'))).status).toBe(200);
    const r = await raw(apiKey, 'plugins.invokeTool', echo('limited', '3'));
    expectError(r, 429, 'TOO_MANY_REQUESTS', /rate limit for plugin limited exceeded.*retry in \d+ s/);
    expect(r.body.error?.data.hayCode).toBe('RATE_LIMITED');
    expect(r.body.error?.data.details?.retryAfterMs).toEqual(expect.any(Number));
    // the bucket is per organization: another org is not limited
    const other = await t.createOrganization('rate-other');
    await other.hay.plugins.enable.mutate({ pluginId: 'limited', configuration: {} });
    expect((await raw(other.apiKey, 'plugins.invokeTool', echo('limited', 'x'))).status).toBe(200);
  });
});

describe('TIMEOUT (408) and tool errors', () => {
  it('times out a tool that never answers, then serves the next call from a fresh instance', async () => {
    const { apiKey, hay } = await t.createOrganization('timeout');
    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    await hay.plugins.invokeTool.mutate(echo('toolkit', 'warm'));
    const before = (await hay.plugins.instances.query()).find((i) => i.pluginId === 'toolkit')?.pid;
    expect(before).toEqual(expect.any(Number));
    const r = await raw(apiKey, 'plugins.invokeTool', {
      pluginId: 'toolkit',
      toolName: 'hang',
      arguments: {},
    });
    expectError(r, 408, 'TIMEOUT', new RegExp(`${CALL_TIMEOUT_MS} ms`));
    expect((await hay.plugins.invokeTool.mutate(echo('toolkit', 'after'))).content).toEqual([
      { type: 'text', text: 'after' },
    ]);
    const after = (await hay.plugins.instances.query()).find((i) => i.pluginId === 'toolkit')?.pid;
    expect(after).not.toBe(before);
    await waitFor(() => !descendantPids().includes(before as number), 'the wedged instance to be stopped');
  });

  it('returns a tool result with isError: true as a successful call', async () => {
    const { apiKey, hay } = await t.createOrganization('tool-error');
    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    const r = await raw(apiKey, 'plugins.invokeTool', {
      pluginId: 'toolkit',
      toolName: 'fail',
      arguments: {},
    });
    expect(r).toEqual({
      status: 200,
      body: {
        result: { data: { isError: true, content: [{ type: 'text', text: 'the upstream system said no' }] } },
      },
    });
  });
});

describe('plugins.* procedures', () => {
  it('lists core plugins with id, name, version, type, description, enabled, install and instance state', async () => {
    const { hay } = await t.createOrganization('lister');
    await hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    await hay.plugins.invokeTool.mutate(echo('hay-plugin-test', 'x'));
    const list = await hay.plugins.list.query();
    expect(list.map((p) => p.id)).toEqual([
      'hay-plugin-test',
      'http-api-connector',
      'limited',
      'solo',
      'toolkit',
    ]);
    const p = list.find((x) => x.id === 'hay-plugin-test');
    expect(p).toEqual({
      id: 'hay-plugin-test',
      name: 'Test Plugin',
      version: '1.0.0',
      type: ['mcp-connector'],
      description: 'Plugin for testing the plugin system',
      sourceType: 'core',
      status: 'ok',
      error: null,
      enabled: true,
      install: { installed: true, built: true, error: null },
      instance: { state: 'running', pid: expect.any(Number), lastError: null },
      category: null,
      icon: null,
      tags: [],
      requiredConfig: [],
    });
    expect(list.find((x) => x.id === 'http-api-connector')).toMatchObject({ enabled: false, instance: null });
  });

  it('gets one plugin with its tools and schema; configure keeps secrets masked and omitted secrets stored', async () => {
    const { hay } = await t.createOrganization('configurer');
    await hay.plugins.enable.mutate({
      pluginId: 'http-api-connector',
      configuration: { baseUrl: 'https://a.example/v1', apiKey: 'super-secret-value' },
    });
    const got = await hay.plugins.get.query({ pluginId: 'http-api-connector' });
    expect(got.tools.map((x) => (x as { name: string }).name)).toEqual(['http_get', 'http_post']);
    expect(Object.keys(got.configSchema as object).sort()).toEqual(['apiKey', 'baseUrl', 'timeoutMs']);
    expect(JSON.stringify(got)).not.toContain('super-secret-value');
    expect(got.configuration.apiKey).toEqual({ set: true });

    const changed = await hay.plugins.configure.mutate({
      pluginId: 'http-api-connector',
      configuration: { baseUrl: 'https://b.example/v2', timeoutMs: 500 },
    });
    expect(changed).toEqual({ success: true, changed: expect.arrayContaining(['baseUrl', 'timeoutMs']) });
    expect(changed.changed).not.toContain('apiKey');
    const after = await hay.plugins.get.query({ pluginId: 'http-api-connector' });
    expect(after.configuration).toEqual({
      baseUrl: 'https://b.example/v2',
      apiKey: { set: true },
      timeoutMs: 500,
    });
    expect(after.enabled).toBe(true);
    expect(
      (
        await codeOf(
          hay.plugins.configure.mutate({
            pluginId: 'http-api-connector',
            configuration: { baseUrl: 'https://c.example', apiKey: 7 },
          }),
        )
      ).message,
    ).toMatch(/configuration\.apiKey/);
  });

  it('lists tools from the server', async () => {
    const { hay } = await t.createOrganization('tools');
    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    const tools = await hay.plugins.listTools.query({ pluginId: 'toolkit' });
    expect(tools.map((x) => x.name).sort()).toEqual(['count', 'echo', 'fail', 'gate', 'hang']);
  });

  it('disable stops the instance and later calls are refused until enabled again', async () => {
    const { apiKey, hay } = await t.createOrganization('disabler');
    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    await hay.plugins.invokeTool.mutate(echo('toolkit', 'x'));
    const instance = (await hay.plugins.instances.query()).find((i) => i.pluginId === 'toolkit');
    expect(instance).toMatchObject({ state: 'running', pid: expect.any(Number) });
    const pid = instance?.pid as number;
    expect(descendantPids()).toContain(pid);

    expect(await hay.plugins.disable.mutate({ pluginId: 'toolkit' })).toEqual({ success: true });
    await waitFor(() => !descendantPids().includes(pid), 'the disabled plugin process to exit');
    expect(
      (await hay.plugins.instances.query()).filter((i) => i.pluginId === 'toolkit' && i.state === 'running'),
    ).toEqual([]);
    expect((await hay.plugins.get.query({ pluginId: 'toolkit' })).enabled).toBe(false);
    expectError(
      await raw(apiKey, 'plugins.invokeTool', echo('toolkit', 'x')),
      412,
      'PRECONDITION_FAILED',
      /not enabled/,
    );

    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    expect((await hay.plugins.invokeTool.mutate(echo('toolkit', 'back'))).content).toEqual([
      { type: 'text', text: 'back' },
    ]);
  });

  it("instances shows only the caller's own instances", async () => {
    const a = await t.createOrganization('inst-a');
    const b = await t.createOrganization('inst-b');
    await a.hay.plugins.enable.mutate({ pluginId: 'hay-plugin-test', configuration: {} });
    await a.hay.plugins.invokeTool.mutate(echo('hay-plugin-test', 'x'));
    const mine = await a.hay.plugins.instances.query();
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      orgId: a.organizationId,
      pluginId: 'hay-plugin-test',
      state: 'running',
      inFlight: 0,
    });
    expect(await b.hay.plugins.instances.query()).toEqual([]);
  });

  it('invokeToolsBatch keeps order and one failing call never fails the others', async () => {
    const { hay } = await t.createOrganization('batch');
    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    const results = await hay.plugins.invokeToolsBatch.mutate({
      calls: [
        echo('toolkit', 'first'),
        { pluginId: 'toolkit', toolName: 'count', arguments: { n: 0 } },
        echo('no-such-plugin', 'x'),
        echo('hay-plugin-test', 'not enabled'),
        { pluginId: 'toolkit', toolName: 'fail', arguments: {} },
        echo('toolkit', 'last'),
      ],
    });
    expect(results).toEqual([
      { ok: true, result: { content: [{ type: 'text', text: 'first' }] } },
      { ok: false, error: { code: 'ARGUMENTS_INVALID', message: expect.stringMatching(/\/n must be >= 1/) } },
      { ok: false, error: { code: 'PLUGIN_NOT_FOUND', message: 'plugin "no-such-plugin" not found' } },
      { ok: false, error: { code: 'PLUGIN_NOT_ENABLED', message: expect.stringMatching(/not enabled/) } },
      {
        ok: true,
        result: { isError: true, content: [{ type: 'text', text: 'the upstream system said no' }] },
      },
      { ok: true, result: { content: [{ type: 'text', text: 'last' }] } },
    ]);
  });

  it('metrics counts calls, errors and active instances per organization', async () => {
    const { hay } = await t.createOrganization('metrics');
    await hay.plugins.enable.mutate({ pluginId: 'toolkit', configuration: {} });
    expect(await hay.plugins.metrics.query({ pluginId: 'toolkit' })).toMatchObject({
      totalInvocations: 0,
      activeInstances: 0,
    });
    await hay.plugins.invokeTool.mutate(echo('toolkit', '1'));
    await hay.plugins.invokeTool.mutate(echo('toolkit', '2'));
    await hay.plugins.invokeTool.mutate({ pluginId: 'toolkit', toolName: 'fail', arguments: {} });
    const m = await hay.plugins.metrics.query({ pluginId: 'toolkit' });
    expect(m.totalInvocations).toBe(3);
    expect(m.errorRate).toBeCloseTo(1 / 3, 5);
    expect(m.averageLatency).toBeGreaterThan(0);
    expect(m.activeInstances).toBe(1);
  });
});
