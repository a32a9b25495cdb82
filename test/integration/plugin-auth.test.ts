import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyJwt, type Jwks } from '../../src/auth/jwt.js';
import { descendantPids } from '../helpers/processes.js';
import { startTestHost, type TestHost } from '../helpers/host.js';
import { startOAuthServer, type OAuthTestServer } from '../fixtures/servers/oauth-server.js';
import { startRemoteServer, type RemoteServer } from '../fixtures/servers/remote-server.js';

type ApiError = {
  message: string;
  data?: { code?: string; hayCode?: string; details?: Record<string, unknown> };
};
const caught = (e: unknown) => e as ApiError;

const LOCAL_AUTH_SERVER = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
const server = new McpServer({ name: 'local-auth', version: '1.0.0' });
server.registerTool('creds', { inputSchema: {} }, async () => ({
  content: [{ type: 'text', text: JSON.stringify({ key: process.env.UPSTREAM_KEY ?? null, jwt: process.env.HAY_AUTH_JWT ?? null }) }],
}));
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => process.exit(0));
`;

let oauth: OAuthTestServer;
let remote: RemoteServer;
let t: TestHost;

beforeAll(async () => {
  oauth = await startOAuthServer();
  remote = await startRemoteServer({ http: true });
  t = await startTestHost({
    corePlugins: [],
    plugins: {
      'core/oauth-remote': {
        'manifest.json': {
          id: 'oauth-remote',
          name: 'OAuth remote',
          version: '1.0.0',
          type: ['mcp-connector'],
          capabilities: {
            mcp: {
              connection: { type: 'remote', url: oauth.mcpUrl },
              transport: 'http',
              auth: ['oauth2'],
              authOptions: { oauth2: { scopes: ['tools'] } },
            },
          },
        },
      },
      'core/jwt-remote': {
        'manifest.json': {
          id: 'jwt-remote',
          name: 'JWT remote',
          version: '1.0.0',
          type: ['mcp-connector'],
          capabilities: {
            mcp: {
              connection: { type: 'remote', url: remote.url },
              transport: 'http',
              auth: ['jwt', 'apiKey'],
              authOptions: {
                jwt: { audience: 'urn:test:remote', ttlSeconds: 120 },
                apiKey: { field: 'upstreamKey', header: 'X-Api-Key' },
              },
            },
          },
          configSchema: { upstreamKey: { type: 'string', required: true, encrypted: true } },
        },
      },
      'core/local-auth': {
        'manifest.json': {
          id: 'local-auth',
          name: 'Local auth',
          version: '1.0.0',
          type: ['mcp-connector'],
          capabilities: {
            mcp: {
              connection: { type: 'local' },
              transport: 'stdio',
              startCommand: 'node server.mjs',
              auth: ['apiKey', 'jwt'],
              authOptions: { apiKey: { field: 'key', env: 'UPSTREAM_KEY' } },
            },
          },
          configSchema: { key: { type: 'string', required: true, encrypted: true } },
        },
        'package.json': { name: 'local-auth', version: '1.0.0', private: true, type: 'module' },
        'server.mjs': LOCAL_AUTH_SERVER,
      },
    },
  });
}, 60_000);

afterAll(async () => {
  await t?.close();
  await oauth?.close();
  await remote?.close();
  expect(descendantPids()).toEqual([]);
});

/** Plays the org admin's browser: opens the authorization URL as `account`, follows the redirect to the host. */
async function approve(authorizationUrl: string, account: string): Promise<{ status: number; body: string }> {
  const res = await fetch(authorizationUrl, { headers: { 'x-test-account': account }, redirect: 'manual' });
  expect(res.status).toBe(302);
  const callback = res.headers.get('location') ?? '';
  expect(callback.startsWith(`${t.url}/v1/oauth/callback?`)).toBe(true);
  const back = await fetch(callback);
  return { status: back.status, body: await back.text() };
}

async function whoami(hay: TestHost['admin']): Promise<string> {
  const result = await hay.plugins.invokeTool.mutate({
    pluginId: 'oauth-remote',
    toolName: 'whoami',
    arguments: {},
  });
  return (result.content[0] as { text: string }).text;
}

describe('OAuth 2.1 for remote plugins, per organization', () => {
  it('refuses calls with 412 until connected, then two orgs use their own accounts and never see each other', async () => {
    const a = await t.createOrganization('org-a');
    const b = await t.createOrganization('org-b');
    for (const org of [a, b])
      await org.hay.plugins.enable.mutate({ pluginId: 'oauth-remote', configuration: {} });

    const before = await whoami(a.hay).catch(caught);
    expect(before).toMatchObject({
      data: { code: 'PRECONDITION_FAILED', hayCode: 'AUTHORIZATION_REQUIRED' },
    });
    expect((before as ApiError).message).toContain('plugins.connect');
    expect(await a.hay.plugins.authStatus.query({ pluginId: 'oauth-remote' })).toMatchObject({
      status: 'not_connected',
    });

    const startA = await a.hay.plugins.connect.mutate({ pluginId: 'oauth-remote' });
    const startB = await b.hay.plugins.connect.mutate({ pluginId: 'oauth-remote' });
    if (startA.status !== 'authorization_required' || startB.status !== 'authorization_required')
      throw new Error('expected authorization URLs');
    const authUrl = new URL(startA.authorizationUrl);
    expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authUrl.searchParams.get('resource')).toBe(oauth.mcpUrl);
    expect(authUrl.searchParams.get('scope')).toBe('tools');
    expect(authUrl.searchParams.get('redirect_uri')).toBe(`${t.url}/v1/oauth/callback`);

    expect(await approve(startA.authorizationUrl, 'alice')).toMatchObject({ status: 200 });
    expect(await approve(startB.authorizationUrl, 'bob')).toMatchObject({ status: 200 });
    expect(oauth.counts.code).toBe(2);

    expect(await whoami(a.hay)).toBe('alice');
    expect(await whoami(b.hay)).toBe('bob');
    expect(await a.hay.plugins.authStatus.query({ pluginId: 'oauth-remote' })).toMatchObject({
      status: 'connected',
    });

    // A replayed callback (state already used) is refused and changes nothing.
    const replay = await fetch(
      `${t.url}/v1/oauth/callback?state=${new URL(startA.authorizationUrl).searchParams.get('state')}&code=x`,
    );
    expect(replay.status).toBe(400);
    expect(await whoami(a.hay)).toBe('alice');

    // Tokens are stored encrypted and never returned or audited.
    const rows = await t.host.services.database.db.execute(sql`select tokens from plugin_oauth`);
    const stored = (rows as unknown as { rows: { tokens: string }[] }).rows.map((r) => r.tokens);
    expect(stored.every((v) => v.startsWith('enc:v1:'))).toBe(true);
    const aliceToken = oauth.accessTokens.get('alice') ?? '';
    const get = JSON.stringify(await a.hay.plugins.get.query({ pluginId: 'oauth-remote' }));
    const audit = JSON.stringify(await t.admin.admin.auditLog.query({ limit: 200 }));
    expect(aliceToken).not.toBe('');
    expect(get).not.toContain(aliceToken);
    expect(audit).not.toContain(aliceToken);
    expect(audit).toContain('oauth.callback');
  });

  it('refreshes tokens before they expire, and revokes them on disable', async () => {
    const c = await t.createOrganization('org-c');
    await c.hay.plugins.enable.mutate({ pluginId: 'oauth-remote', configuration: {} });
    oauth.setExpiresIn(5);
    const start = await c.hay.plugins.connect.mutate({ pluginId: 'oauth-remote' });
    if (start.status !== 'authorization_required') throw new Error('expected an authorization URL');
    await approve(start.authorizationUrl, 'carol');
    oauth.setExpiresIn(3600);
    const refreshesBefore = oauth.counts.refresh;
    expect(await whoami(c.hay)).toBe('carol');
    expect(oauth.counts.refresh).toBeGreaterThan(refreshesBefore);

    const revokesBefore = oauth.counts.revoke;
    await c.hay.plugins.disable.mutate({ pluginId: 'oauth-remote' });
    await expect
      .poll(async () => (await c.hay.plugins.authStatus.query({ pluginId: 'oauth-remote' })).status)
      .toBe('not_connected');
    expect(oauth.counts.revoke).toBeGreaterThan(revokesBefore);
  });

  it('a member key cannot start an authorization; another org cannot complete one', async () => {
    const d = await t.createOrganization('org-d');
    const { apiKey } = await t.admin.admin.createApiKey.mutate({
      organizationId: d.organizationId,
      role: 'member',
    });
    await d.hay.plugins.enable.mutate({ pluginId: 'oauth-remote', configuration: {} });
    const denied = await t.client(apiKey).plugins.connect.mutate({ pluginId: 'oauth-remote' }).catch(caught);
    expect(denied).toMatchObject({ data: { code: 'FORBIDDEN' } });
    const bogus = await fetch(`${t.url}/v1/oauth/callback?state=not-a-real-state&code=abc`);
    expect(bogus.status).toBe(400);
    expect(await bogus.text()).toContain('Unknown or expired authorization state');
  });

  it('a callback error whose description has NUL fails the authorization, recorded; the state is spent', async () => {
    // found 2026-12-02: last_error refused NUL, so the failure was not recorded (answer "Authorization
    // failed", no audit) and the authorization stayed pending with its state still valid
    const e = await t.createOrganization('org-e');
    await e.hay.plugins.enable.mutate({ pluginId: 'oauth-remote', configuration: {} });
    const start = await e.hay.plugins.connect.mutate({ pluginId: 'oauth-remote' });
    if (start.status !== 'authorization_required') throw new Error('expected an authorization URL');
    const state = new URL(start.authorizationUrl).searchParams.get('state') ?? '';
    const denied = await fetch(
      `${t.url}/v1/oauth/callback?state=${state}&error=access_denied&error_description=no%00way`,
    );
    expect(denied.status).toBe(400);
    expect(await denied.text()).toContain('was not granted (access_denied: no');
    expect(await e.hay.plugins.authStatus.query({ pluginId: 'oauth-remote' })).toMatchObject({
      status: 'failed',
      lastError: 'access_denied: no\ufffdway',
    });
    const again = await fetch(`${t.url}/v1/oauth/callback?state=${state}&code=x`);
    expect(await again.text()).toContain('Unknown or expired authorization state');
  });
});

describe('OAuth for a tenant (custom) remote plugin', () => {
  it('follows the egress policy: a loopback authorization target is refused, nothing is stored', async () => {
    const h = await t.createOrganization('org-h');
    t.writePlugin(`custom/${h.organizationId}/tenant-oauth`, {
      'manifest.json': {
        id: 'tenant-oauth',
        name: 'Tenant OAuth',
        version: '1.0.0',
        type: ['mcp-connector'],
        capabilities: {
          mcp: { connection: { type: 'remote', url: oauth.mcpUrl }, transport: 'http', auth: ['oauth2'] },
        },
      },
    });
    await t.admin.admin.rescanPlugins.mutate();
    await h.hay.plugins.enable.mutate({ pluginId: 'tenant-oauth', configuration: {} });
    const registerBefore = oauth.counts.register;
    const refused = await h.hay.plugins.connect.mutate({ pluginId: 'tenant-oauth' }).catch(caught);
    expect(refused).toMatchObject({ data: { code: 'FORBIDDEN', hayCode: 'EGRESS_DENIED' } });
    expect(oauth.counts.register).toBe(registerBefore);
    expect(await h.hay.plugins.authStatus.query({ pluginId: 'tenant-oauth' })).toMatchObject({
      status: 'failed',
    });
  });
});

describe('JWT and API key credentials', () => {
  it('sends a per-instance JWT (verifiable with the host JWKS) and the API key header to a remote plugin', async () => {
    const e = await t.createOrganization('org-e');
    await e.hay.plugins.enable.mutate({
      pluginId: 'jwt-remote',
      configuration: { upstreamKey: 'k-e-secret' },
    });
    const result = await e.hay.plugins.invokeTool.mutate({
      pluginId: 'jwt-remote',
      toolName: 'echo',
      arguments: { message: 'hi' },
    });
    expect(result.content[0]).toMatchObject({ text: 'hi' });
    const seen = remote.seenHeaders.at(-1) ?? {};
    expect(seen['x-api-key']).toBe('k-e-secret');
    const token = /^Bearer (.+)$/.exec(String(seen.authorization))?.[1] ?? '';
    const jwks = (await (await fetch(`${t.url}/.well-known/jwks.json`)).json()) as Jwks;
    const verified = verifyJwt(token, jwks, { audience: 'urn:test:remote', issuer: t.url });
    expect(verified).toMatchObject({ ok: true, claims: { org: e.organizationId, plugin: 'jwt-remote' } });
    if (!verified.ok) return;
    expect(verified.claims.exp - verified.claims.iat).toBe(120);
    expect(verifyJwt(token, jwks, { audience: 'urn:other' })).toMatchObject({
      ok: false,
      reason: 'wrong audience',
    });

    // Rotation: the old key stays published, new tokens use the new key.
    const rotated = await t.admin.admin.rotateSigningKey.mutate();
    const jwks2 = (await (await fetch(`${t.url}/.well-known/jwks.json`)).json()) as Jwks;
    expect(jwks2.keys.map((k) => k.kid)).toContain(rotated.kid);
    expect(rotated.retired.length).toBe(1);
    expect(verifyJwt(token, jwks2, { audience: 'urn:test:remote' }).ok).toBe(true);
    await t.host.services.instances.stopInstance(
      e.organizationId,
      t.host.services.registry.get(null, 'jwt-remote')?.key ?? '',
      'test',
    );
    await e.hay.plugins.invokeTool.mutate({
      pluginId: 'jwt-remote',
      toolName: 'echo',
      arguments: { message: 'again' },
    });
    const next = /^Bearer (.+)$/.exec(String(remote.seenHeaders.at(-1)?.authorization))?.[1] ?? '';
    const header = JSON.parse(Buffer.from(next.split('.')[0] ?? '', 'base64url').toString()) as {
      kid: string;
    };
    expect(header.kid).toBe(rotated.kid);
  });

  it('gives a local plugin its API key and a JWT in the environment, per organization', async () => {
    const f = await t.createOrganization('org-f');
    const g = await t.createOrganization('org-g');
    await f.hay.plugins.enable.mutate({ pluginId: 'local-auth', configuration: { key: 'key-of-f' } });
    await g.hay.plugins.enable.mutate({ pluginId: 'local-auth', configuration: { key: 'key-of-g' } });
    const read = async (hay: TestHost['admin']) =>
      JSON.parse(
        (
          (await hay.plugins.invokeTool.mutate({ pluginId: 'local-auth', toolName: 'creds', arguments: {} }))
            .content[0] as { text: string }
        ).text,
      ) as { key: string; jwt: string };
    const jwks = (await (await fetch(`${t.url}/.well-known/jwks.json`)).json()) as Jwks;
    const cf = await read(f.hay);
    const cg = await read(g.hay);
    expect(cf.key).toBe('key-of-f');
    expect(cg.key).toBe('key-of-g');
    expect(verifyJwt(cf.jwt, jwks, { audience: 'local-auth' })).toMatchObject({
      ok: true,
      claims: { org: f.organizationId },
    });
    expect(verifyJwt(cg.jwt, jwks, { audience: 'local-auth' })).toMatchObject({
      ok: true,
      claims: { org: g.organizationId },
    });
  });
});
