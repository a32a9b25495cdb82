/**
 * Measures what moving the host's plugin-side client from SDK 1.32 to `@modelcontextprotocol/client` 2.x
 * would change, on a stdio plugin served by SDK v2 (test/fixtures/servers/modern-only.mjs):
 * whether each client (2.x with versionNegotiation 'auto') connects to a 2026-07-28-only server, and, against the same server serving both
 * eras, connect time and sequential echo-call latency of each client. Run: npx tsx bench/plugin-client-era.ts
 */
import path from 'node:path';
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as LegacyStdio } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Client as ModernClient } from '@modelcontextprotocol/client';
import { StdioClientTransport as ModernStdio } from '@modelcontextprotocol/client/stdio';

const CALLS = Number(process.env.BENCH_CALLS ?? 500);
const fixture = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'servers', 'modern-only.mjs');

async function run(kind: 'sdk-1.32' | 'client-2.x', args: string[]) {
  const params = { command: process.execPath, args: [fixture, ...args] };
  const t0 = performance.now();
  const client =
    kind === 'sdk-1.32'
      ? new LegacyClient({ name: 'bench', version: '1' })
      : new ModernClient({ name: 'bench', version: '1' }, { versionNegotiation: { mode: 'auto' } });
  try {
    if (client instanceof LegacyClient) await client.connect(new LegacyStdio(params), { timeout: 5_000 });
    else await client.connect(new ModernStdio(params));
  } catch (err) {
    await client.close().catch(() => undefined);
    return {
      kind,
      args: args.join(' ') || 'modern only',
      connected: false,
      error: String(err).slice(0, 160),
    };
  }
  const connectMs = performance.now() - t0;
  const era = 'getProtocolEra' in client ? (client as ModernClient).getProtocolEra() : '2025-11-25';
  const t1 = performance.now();
  for (let i = 0; i < CALLS; i++) await client.callTool({ name: 'echo', arguments: { message: String(i) } });
  const perCallMs = (performance.now() - t1) / CALLS;
  await client.close();
  return {
    kind,
    args: args.join(' ') || 'modern only',
    connected: true,
    era,
    connectMs: Math.round(connectMs),
    perCallMs: Math.round(perCallMs * 1000) / 1000,
  };
}

const rows = [];
for (const kind of ['sdk-1.32', 'client-2.x'] as const) rows.push(await run(kind, []));
for (const kind of ['sdk-1.32', 'client-2.x'] as const) rows.push(await run(kind, ['--both']));
process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
