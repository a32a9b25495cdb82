import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformTokens } from '../../src/security/platform-token.js';
import { startSmtpServer } from '../fixtures/adversarial/smtp.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestHost, toolkitPlugin, type TestHost, type TestHostOptions } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Issue 9: platform API bounds. Email has a per-org quota and is closed to custom plugins unless the
 * operator allows it; platform tokens can be refreshed by a running plugin and are revoked on disable.
 */
const TOKEN_SERVER = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
const server = new McpServer({ name: 'tokenish', version: '1.0.0' });
server.registerTool('token', { inputSchema: {} }, async () => ({
  content: [{ type: 'text', text: process.env.HAY_API_TOKEN ?? '' }],
}));
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => process.exit(0));
`;

let t: TestHost;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;

async function platform(path: string, token: string, body: unknown = {}, on: TestHost = t) {
  const res = await fetch(`${on.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const mail = (to: string | string[]) => ({ to, subject: 'hi', text: 'body' });
const errorOf = (r: { body: Record<string, unknown> }) => r.body.error as { code: string; message: string };

const tokenishHost = (): TestHostOptions => ({
  corePlugins: [],
  plugins: {
    'core/tokenish': toolkitPlugin(
      'tokenish',
      {
        capabilities: {
          mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node token.mjs' },
        },
        permissions: { api: ['email'] },
      },
      { 'token.mjs': TOKEN_SERVER },
    ),
  },
  config: { smtpUrl: smtp.url, emailPerOrgPerHour: 3 },
});

beforeAll(async () => {
  smtp = await startSmtpServer();
  t = await startTestHost(tokenishHost());
});
afterAll(async () => {
  await t?.close();
  await smtp?.close();
  await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
});

describe('platform tokens of a running instance', () => {
  it('refresh gives a working token; disable revokes every token of the pair (401)', async () => {
    const org = await t.createOrganization('tokens');
    await org.hay.plugins.enable.mutate({ pluginId: 'tokenish', configuration: {} });
    const got = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'tokenish',
      toolName: 'token',
      arguments: {},
    });
    const first = (got.content as { text: string }[])[0]?.text ?? '';
    expect(first).toMatch(/^hpt1\./);

    const refreshed = await platform('/v1/platform/token/refresh', first);
    expect(refreshed.status).toBe(200);
    const second = String(refreshed.body.token);
    expect(second).not.toBe(first);
    expect(Date.parse(String(refreshed.body.expiresAt))).toBeGreaterThan(Date.now());
    expect((await platform('/v1/platform/email/send', second, mail('a@example.com'))).status).toBe(200);

    await org.hay.plugins.disable.mutate({ pluginId: 'tokenish' });
    for (const token of [first, second]) {
      const r = await platform('/v1/platform/email/send', token, mail('a@example.com'));
      expect(r.status).toBe(401);
      expect(errorOf(r).message).toMatch(/revoked/);
      expect((await platform('/v1/platform/token/refresh', token)).status).toBe(401);
    }
    // re-enabled, the new instance gets a new, valid token
    await org.hay.plugins.enable.mutate({ pluginId: 'tokenish', configuration: {} });
    const again = await org.hay.plugins.invokeTool.mutate({
      pluginId: 'tokenish',
      toolName: 'token',
      arguments: {},
    });
    const third = (again.content as { text: string }[])[0]?.text ?? '';
    expect((await platform('/v1/platform/token/refresh', third)).status).toBe(200);
  });
});

async function tokenOf(hay: TestHost['admin']): Promise<string> {
  const got = await hay.plugins.invokeTool.mutate({ pluginId: 'tokenish', toolName: 'token', arguments: {} });
  return (got.content as { text: string }[])[0]?.text ?? '';
}

describe('platform token revocation is kept in the database', () => {
  const extra: TestHost[] = [];
  let db: TestDatabase | undefined;
  afterAll(async () => {
    for (const h of extra) await h.close();
    await db?.dispose();
  });

  it('a token revoked by disable stays refused after a host restart (PGlite)', async () => {
    const first = await startTestHost(tokenishHost());
    extra.push(first);
    const org = await first.createOrganization('restart');
    await org.hay.plugins.enable.mutate({ pluginId: 'tokenish', configuration: {} });
    const token = await tokenOf(org.hay);
    expect((await platform('/v1/platform/email/send', token, mail('a@example.com'), first)).status).toBe(200);
    await org.hay.plugins.disable.mutate({ pluginId: 'tokenish' });
    expect((await platform('/v1/platform/email/send', token, mail('a@example.com'), first)).status).toBe(401);
    const kept = await first.stop();
    const second = await startTestHost({ ...tokenishHost(), reuse: kept });
    extra.push(second);
    for (const route of ['/v1/platform/email/send', '/v1/platform/token/refresh']) {
      const r = await platform(route, token, mail('a@example.com'), second);
      expect(r.status).toBe(401);
      expect(errorOf(r).message).toMatch(/revoked/);
    }
  });

  it('a token revoked on one node is refused by another node on the same PostgreSQL', async () => {
    db = await createTestDatabase('postgres');
    const shared = { ...tokenishHost(), databaseUrl: db.databaseUrl };
    const config = { ...shared.config, encryptionKey: 'b'.repeat(64) };
    const a = await startTestHost({ ...shared, config });
    extra.push(a);
    const b = await startTestHost({ ...shared, config: { ...config, adminToken: a.adminToken } });
    extra.push(b);
    const org = await a.createOrganization('two-nodes');
    await org.hay.plugins.enable.mutate({ pluginId: 'tokenish', configuration: {} });
    const token = await tokenOf(org.hay);
    expect((await platform('/v1/platform/email/send', token, mail('a@example.com'), b)).status).toBe(200);
    await org.hay.plugins.disable.mutate({ pluginId: 'tokenish' });
    const r = await platform('/v1/platform/email/send', token, mail('a@example.com'), b);
    expect(r.status).toBe(401);
    expect(errorOf(r).message).toMatch(/revoked/);
    // re-enabled through node b: the new instance's token works on node a
    await b.client(org.apiKey).plugins.enable.mutate({ pluginId: 'tokenish', configuration: {} });
    const fresh = await tokenOf(b.client(org.apiKey));
    expect((await platform('/v1/platform/token/refresh', fresh, {}, a)).status).toBe(200);
  });
});

describe('email quotas and custom plugins', () => {
  it('an org gets 429 past its hourly quota (recipients), naming the variable; others are unaffected', async () => {
    const a = await t.createOrganization('quota-a');
    const b = await t.createOrganization('quota-b');
    const key = t.host.services.registry.get(a.organizationId, 'tokenish')?.key ?? '';
    const tokens = new PlatformTokens({
      secret: t.host.services.keyRing.deriveKey('platform-token'),
      ttlMs: 60_000,
    });
    const tokenA = (
      await tokens.issue({
        orgId: a.organizationId,
        pluginId: 'tokenish',
        pluginKey: key,
        apis: ['email'],
      })
    ).token;
    const tokenB = (
      await tokens.issue({
        orgId: b.organizationId,
        pluginId: 'tokenish',
        pluginKey: key,
        apis: ['email'],
      })
    ).token;
    const sent = smtp.messages.length;
    expect(
      (await platform('/v1/platform/email/send', tokenA, mail(['x@example.com', 'y@example.com']))).status,
    ).toBe(200);
    expect((await platform('/v1/platform/email/send', tokenA, mail('z@example.com'))).status).toBe(200);
    const over = await platform('/v1/platform/email/send', tokenA, mail('w@example.com'));
    expect(over.status).toBe(429);
    expect(errorOf(over)).toMatchObject({ code: 'RATE_LIMITED' });
    expect(errorOf(over).message).toMatch(
      /^email quota for this organization exceeded: 3 per hour \(HAY_EMAIL_PER_ORG_PER_HOUR\); retry in \d+ s$/,
    );
    expect((await platform('/v1/platform/email/send', tokenB, mail('v@example.com'))).status).toBe(200);
    await waitFor(() => smtp.messages.length === sent + 3, 'three messages');
  });

  it('a custom plugin asking for email is refused unless the operator allows it', async () => {
    const org = await t.createOrganization('custom-mail');
    t.writePlugin(
      `custom/${org.organizationId}/mailer`,
      toolkitPlugin('mailer', { permissions: { api: ['email'] } }),
    );
    await t.admin.admin.rescanPlugins.mutate();
    const key = t.host.services.registry.get(org.organizationId, 'mailer')?.key ?? '';
    expect(key).not.toBe('');
    const tokens = new PlatformTokens({
      secret: t.host.services.keyRing.deriveKey('platform-token'),
      ttlMs: 60_000,
    });
    const token = (
      await tokens.issue({
        orgId: org.organizationId,
        pluginId: 'mailer',
        pluginKey: key,
        apis: ['email'],
      })
    ).token;
    const sent = smtp.messages.length;
    const r = await platform('/v1/platform/email/send', token, mail('q@example.com'));
    expect(r.status).toBe(403);
    expect(errorOf(r).message).toBe(
      'the email API is not available to custom plugins on this host; the operator can allow it with HAY_EMAIL_CUSTOM_PLUGINS=allow',
    );
    expect(smtp.messages.length).toBe(sent);
  });
});
