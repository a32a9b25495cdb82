import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig, type HostConfig } from '../../src/config.js';
import { createHost, type Host } from '../../src/host.js';
import { packageRoot } from '../../src/paths.js';
import { JsonHttpClient } from './http-client.js';

export const PLUGIN_ID = 'hay-plugin-test';

export interface BenchHost {
  host: Host;
  /** Keep-alive client on the host's URL (one socket per call in flight). */
  http: JsonHttpClient;
  /** A new organization with the test plugin enabled; returns its admin API key and id. */
  newOrgWithPlugin(name: string): Promise<{ apiKey: string; organizationId: string }>;
  /** Calls a tRPC procedure; throws with the server's message on an error response. */
  trpc(proc: string, token: string, input: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * An in-process host on a temporary data dir (embedded PGlite), port 0, the repository's plugins.
 * Rate limits are raised so load runs measure the host, not the limiter.
 */
export async function startBenchHost(overrides: Partial<HostConfig> = {}): Promise<BenchHost> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hay-bench-'));
  const config = loadConfig({}, [], {
    port: 0,
    dataDir,
    pluginsDir: path.join(packageRoot(), 'plugins'),
    adminToken: 'bench-admin-token',
    sandbox: 'off',
    logLevel: 'silent',
    rateLimitPerMinute: 100_000_000,
    rateLimitBurst: 1_000_000,
    apiKeyRateLimitPerMinute: 100_000_000,
    healthIntervalMs: 600_000,
    pingBeforeReuseAfterMs: 600_000,
    ...overrides,
  });
  const host = await createHost(config, { logger: pino({ level: config.logLevel }) });
  await host.start();
  const http = new JsonHttpClient(host.url);
  const trpc = async (proc: string, token: string, input: unknown): Promise<unknown> => {
    const res = await http.post(`/trpc/${proc}`, input, { authorization: `Bearer ${token}` });
    return unwrapTrpc(res.body, proc);
  };
  return {
    host,
    http,
    trpc,
    async newOrgWithPlugin(name) {
      const org = (await trpc('admin.createOrganization', host.adminToken, { name })) as {
        apiKey: string;
        organizationId: string;
      };
      await trpc('plugins.enable', org.apiKey, { pluginId: PLUGIN_ID, configuration: {} });
      return { apiKey: org.apiKey, organizationId: org.organizationId };
    },
    async close() {
      http.close();
      await host.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The `result.data` of a tRPC response, or an Error carrying the server's message. */
export function unwrapTrpc(body: unknown, what: string): unknown {
  const b = body as { result?: { data?: unknown }; error?: { message?: string } } | undefined;
  if (b?.result) return b.result.data;
  throw new Error(`${what}: ${b?.error?.message ?? JSON.stringify(body)}`);
}

/** Checks an echo result and throws if it is not the expected text. */
export function checkEcho(data: unknown, message: string): void {
  const r = data as { content?: { text?: string }[]; isError?: boolean } | undefined;
  if (r?.isError || r?.content?.[0]?.text !== message)
    throw new Error(`unexpected echo result: ${JSON.stringify(data).slice(0, 200)}`);
}
