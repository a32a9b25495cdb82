import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createHost } from '../../src/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
// Ref'd handles only: unref'd timers are not listed by Node (the instance manager's own test counts timers).
const HANDLE_TYPES = new Set(['TCPServerWrap', 'TCPSocketWrap', 'PipeWrap', 'ProcessWrap', 'TTYWrap']);
const handles = () =>
  process
    .getActiveResourcesInfo()
    .filter((t) => HANDLE_TYPES.has(t))
    .sort();

async function trpc(url: string, proc: string, token: string, body: unknown) {
  const res = await fetch(`${url}/trpc/${proc}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { result?: { data: Record<string, unknown> } } };
}

describe('host lifecycle', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hay-life-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('serves a tool call, then close() frees processes, the port, timers and the database', async () => {
    cpSync(inject('pgliteTemplateDir'), path.join(dataDir, 'pglite'), { recursive: true });
    const before = handles();
    const host = await createHost(
      loadConfig({}, [], {
        port: 0,
        dataDir,
        pluginsDir: path.join(ROOT, 'plugins'),
        adminToken: 'admin-token-for-tests',
        sandbox: 'off',
        logLevel: 'silent',
      }),
      { logger: pino({ level: 'silent' }) },
    );
    await host.start();
    await host.start();
    const health = await fetch(`${host.url}/healthz`);
    expect(health.status).toBe(200);

    const org = await trpc(host.url, 'admin.createOrganization', host.adminToken, { name: 'life' });
    const key = String(org.json.result?.data.apiKey);
    await trpc(host.url, 'plugins.enable', key, { pluginId: 'hay-plugin-test', configuration: {} });
    const call = await trpc(host.url, 'plugins.invokeTool', key, {
      pluginId: 'hay-plugin-test',
      toolName: 'echo',
      arguments: { message: 'lifecycle' },
    });
    expect(call.json.result?.data).toEqual({
      content: [{ type: 'text', text: 'lifecycle' }],
      structuredContent: { message: 'lifecycle' },
    });
    expect(descendantPids().length).toBeGreaterThanOrEqual(1);
    const port = Number(new URL(host.url).port);

    await Promise.all([host.close(), host.close()]);
    await host.close();

    expect(descendantPids()).toEqual([]);
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    await expect(host.services.database.db.execute('select 1')).rejects.toThrow();
    // the test's own keep-alive client socket closes once it sees the server's FIN
    await waitFor(
      () => handles().join() === before.join(),
      `handles back to ${before.join()}; now ${handles().join()}`,
    );
  });
});
