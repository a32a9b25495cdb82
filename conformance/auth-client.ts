/**
 * The host as the client under test of the MCP conformance suite's client auth scenarios
 * (`conformance client --suite auth --command "tsx conformance/auth-client.ts"`). The suite appends the
 * scenario server's URL. This wrapper boots a real host (embedded database, temp folders), registers a
 * core remote plugin at that URL with `auth: ["oauth2"]`, and then plays the org admin: enable,
 * plugins.connect, opens the authorization URL like a browser (following redirects to the host's
 * callback), and calls the plugin's tools through plugins.invokeTool. A step-up (a call answered
 * AUTHORIZATION_REQUIRED) reconnects, at most twice.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHayClient } from '../src/api/client.js';
import { DEFAULTS } from '../src/config.js';
import { createHost } from '../src/host.js';
import { packageRoot } from '../src/paths.js';
import { cpSync } from 'node:fs';

const serverUrl = process.argv[2];
if (!serverUrl) {
  process.stderr.write('usage: auth-client <server-url>\n');
  process.exit(2);
}
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as {
  client_id?: string;
  client_secret?: string;
};

const work = mkdtempSync(path.join(os.tmpdir(), 'hay-conformance-'));
const pluginsDir = path.join(work, 'plugins');
cpSync(path.join(packageRoot(), 'plugins', 'base'), path.join(pluginsDir, 'base'), { recursive: true });
mkdirSync(path.join(pluginsDir, 'core', 'remote'), { recursive: true });
mkdirSync(path.join(pluginsDir, 'custom'), { recursive: true });
const oauth2: Record<string, unknown> = {};
const configSchema: Record<string, unknown> = {};
if (context.client_id !== undefined) {
  oauth2.clientId = context.client_id;
  if (context.client_secret !== undefined) {
    oauth2.clientSecretField = 'clientSecret';
    configSchema.clientSecret = { type: 'string', encrypted: true };
  }
}
writeFileSync(
  path.join(pluginsDir, 'core', 'remote', 'manifest.json'),
  JSON.stringify({
    id: 'remote',
    name: 'Conformance server',
    version: '1.0.0',
    type: ['mcp-connector'],
    capabilities: {
      mcp: {
        connection: { type: 'remote', url: serverUrl },
        transport: 'http',
        auth: ['oauth2'],
        ...(Object.keys(oauth2).length > 0 ? { authOptions: { oauth2 } } : {}),
      },
    },
    ...(Object.keys(configSchema).length > 0 ? { configSchema } : {}),
  }),
);

const host = await createHost({
  ...DEFAULTS,
  port: 0,
  dataDir: path.join(work, 'data'),
  pluginsDir,
  sandbox: 'off',
  logLevel: (process.env.HAY_LOG_LEVEL as typeof DEFAULTS.logLevel | undefined) ?? 'silent',
  adminToken: 'conformance-admin',
});
let exitCode = 0;
try {
  await host.start();
  const admin = createHayClient({ url: host.url, apiKey: host.adminToken });
  const { apiKey } = await admin.admin.createOrganization.mutate({ name: 'conformance' });
  const hay = createHayClient({ url: host.url, apiKey });
  await hay.plugins.enable.mutate({
    pluginId: 'remote',
    configuration: context.client_secret !== undefined ? { clientSecret: context.client_secret } : {},
  });

  const authorize = async () => {
    const start = await hay.plugins.connect.mutate({ pluginId: 'remote' });
    if (start.status === 'connected') return;
    let next: string | null = start.authorizationUrl;
    for (let hops = 0; next !== null && hops < 10; hops++) {
      const res: Response = await fetch(next, { redirect: 'manual' });
      const location = res.headers.get('location');
      await res.body?.cancel();
      next = location === null ? null : new URL(location, next).toString();
      if (next?.startsWith(`${host.url}/v1/oauth/callback`)) {
        const back = await fetch(next);
        const text = await back.text();
        if (back.status !== 200) throw new Error(`callback failed: ${text}`);
        return;
      }
    }
    throw new Error('the authorization server did not redirect back to the host');
  };

  const withAuthorization = async <T>(op: () => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        const code = (err as { data?: { hayCode?: string } }).data?.hayCode;
        if (code !== 'AUTHORIZATION_REQUIRED' || attempt >= 2) throw err;
        await authorize();
      }
    }
  };

  const tools = await withAuthorization(() => hay.plugins.listTools.query({ pluginId: 'remote' }));
  for (const tool of tools.slice(0, 3)) {
    await withAuthorization(() =>
      hay.plugins.invokeTool.mutate({ pluginId: 'remote', toolName: tool.name, arguments: {} }),
    ).catch((err: unknown) => process.stderr.write(`call ${tool.name}: ${String(err)}\n`));
  }
  process.stdout.write(`listed ${tools.length} tools\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  exitCode = 1;
} finally {
  await host.close();
  rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
