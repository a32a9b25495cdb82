/**
 * The host as the server under test of the MCP conformance server suite (`conformance server --url`).
 * Boots a real host (embedded database, temp folders, no sandbox) with one core plugin,
 * conformance/server-plugin (the tools, resources and prompts the scenarios call), one organization
 * with that plugin enabled and unprefixed names, and a loopback forwarder that adds the
 * organization's API key to every request (the suite sends no Authorization header). Prints
 * `url <forwarder>/mcp` on stdout, then serves until stdin closes or SIGTERM; closes everything.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHayClient } from '../src/api/client.js';
import { DEFAULTS } from '../src/config.js';
import { createHost } from '../src/host.js';
import { packageRoot } from '../src/paths.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hay-conformance-server-'));
const pluginsDir = path.join(work, 'plugins');
cpSync(path.join(packageRoot(), 'plugins', 'base'), path.join(pluginsDir, 'base'), { recursive: true });
cpSync(
  path.join(packageRoot(), 'conformance', 'server-plugin'),
  path.join(pluginsDir, 'core', 'conformance'),
  {
    recursive: true,
  },
);
mkdirSync(path.join(pluginsDir, 'custom'), { recursive: true });
// the plugin resolves the MCP SDK and zod through the plugins folder's link to the repo's node_modules
symlinkSync(path.join(packageRoot(), 'node_modules'), path.join(pluginsDir, 'node_modules'), 'dir');

const host = await createHost({
  ...DEFAULTS,
  port: 0,
  dataDir: path.join(work, 'data'),
  pluginsDir,
  sandbox: 'off',
  logLevel: (process.env.HAY_LOG_LEVEL as typeof DEFAULTS.logLevel | undefined) ?? 'silent',
  adminToken: 'conformance-admin',
});
await host.start();
const admin = createHayClient({ url: host.url, apiKey: host.adminToken });
const { apiKey } = await admin.admin.createOrganization.mutate({ name: 'conformance' });
const hay = createHayClient({ url: host.url, apiKey });
await hay.plugins.enable.mutate({ pluginId: 'conformance', configuration: {} });
await hay.gateway.configure.mutate({ unprefixedNames: true });
// one start stores the plugin's resource and prompt lists (listing never starts a plugin for them)
await hay.plugins.listTools.query({ pluginId: 'conformance' });

const target = new URL(host.url);
const forwarder = http.createServer((req, res) => {
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      // the client's own Host passes through: the suite's dns-rebinding-protection scenario checks it
      headers: { ...req.headers, authorization: `Bearer ${apiKey}` },
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
});
await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
process.stdout.write(`url http://127.0.0.1:${(forwarder.address() as AddressInfo).port}/mcp\n`);

let closing: Promise<void> | undefined;
const close = () =>
  (closing ??= (async () => {
    forwarder.closeAllConnections();
    await new Promise<void>((resolve) => forwarder.close(() => resolve()));
    await host.close();
    rmSync(work, { recursive: true, force: true });
    process.exit(0);
  })());
process.stdin.on('end', () => void close());
process.stdin.resume();
process.on('SIGTERM', () => void close());
