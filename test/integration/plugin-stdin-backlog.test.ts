import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, describe, expect, it } from 'vitest';
import { NoSandbox } from '../../src/runtime/process/no-sandbox.js';
import { ProcessManager } from '../../src/runtime/process/process-manager.js';
import { ProcessStdioTransport } from '../../src/runtime/process/stdio-transport.js';
import { descendantPids, waitFor } from '../helpers/processes.js';
import { envMarker, fixtureLaunch, memoryLogger } from '../fixtures/servers/harness.js';

const pm = new ProcessManager({
  logger: memoryLogger().logger,
  sandbox: new NoSandbox(),
  stopGraceMs: 150,
  killGraceMs: 150,
});

afterAll(async () => {
  await pm.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

describe('a plugin that never reads its stdin', () => {
  it('is cut off once the bytes waiting for its stdin pass the backlog bound, instead of the host buffering every answer', async () => {
    const proc = await pm.spawn(fixtureLaunch('never-reads.mjs', envMarker()));
    const transport = new ProcessStdioTransport(proc, { maxBacklogBytes: 4 * 1024 * 1024 });
    const errors: string[] = [];
    let maxBacklog = 0;
    const closed = new Promise<void>((resolve) => {
      const client = new Client({ name: 'test', version: '1' });
      client.onerror = (err) => errors.push(err.message);
      client.onclose = () => resolve();
      // initialize is never answered; the client answers the plugin's pings meanwhile
      void client.connect(transport).catch(() => undefined);
    });
    const sample = setInterval(() => {
      maxBacklog = Math.max(maxBacklog, proc.stdin.writableLength);
    }, 5);
    await closed;
    clearInterval(sample);
    // the plugin sent 64 pings of 1 MB ids: unbounded, the host would hold ~64 MB of answers for it
    expect(maxBacklog).toBeLessThanOrEqual(4 * 1024 * 1024 + 2 * 1024 * 1024);
    expect(errors.join('\n')).toMatch(/does not read its stdin/);
    await proc.exited;
  });
});
