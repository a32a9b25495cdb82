import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CapacityError, type HayError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { McpConnectionFactory } from '../../src/runtime/client/connection-factory.js';
import { InstanceManager, type InstanceManagerOptions } from '../../src/runtime/instance/index.js';
import type { ActivityStore, PluginSpec } from '../../src/runtime/ports.js';
import { ProcessManager } from '../../src/runtime/process/process-manager.js';
import { descendantPids, pidsWithEnvMarker, waitFor } from '../helpers/processes.js';
import {
  DEFAULT_LIMITS,
  FixedEnv,
  FixedRemote,
  localSpec,
  RecordingSandbox,
} from '../fixtures/servers/factory-harness.js';
import { envMarker } from '../fixtures/servers/harness.js';

const OPTIONS: InstanceManagerOptions = {
  idleTimeoutMs: 60_000,
  idleSweepIntervalMs: 60_000,
  queueTimeoutMs: 10_000,
  callTimeoutMs: 10_000,
  startTimeoutMs: 15_000,
  healthIntervalMs: 60_000,
  pingBeforeReuseAfterMs: 60_000,
  crashBackoffBaseMs: 50,
  crashBackoffMaxMs: 200,
  activityFlushIntervalMs: 60_000,
  shutdownDrainMs: 1_000,
};

const cleanups: (() => Promise<void>)[] = [];

function setup(options: Partial<InstanceManagerOptions> = {}) {
  const logger = createLogger({ level: 'silent' });
  const marker = envMarker();
  const processes = new ProcessManager({
    logger,
    sandbox: new RecordingSandbox(),
    stopGraceMs: 200,
    killGraceMs: 200,
  });
  const factory = new McpConnectionFactory({
    logger,
    processes,
    env: new FixedEnv({ [marker.name]: marker.value }),
    remote: new FixedRemote('http://127.0.0.1:1/unused'),
    limits: DEFAULT_LIMITS,
    callTimeoutMs: 10_000,
  });
  let connects = 0;
  const activityWrites: number[] = [];
  const activity: ActivityStore = {
    recordActivity: async (entries) => {
      activityWrites.push(entries.length);
    },
  };
  const manager = new InstanceManager({
    logger,
    connections: {
      connect: (orgId, spec, opts) => {
        connects++;
        return factory.connect(orgId, spec, opts);
      },
    },
    preparer: { ensureReady: async () => {} },
    activity,
    options: { ...OPTIONS, ...options },
  });
  manager.start();
  cleanups.push(async () => {
    await manager.close();
    await processes.close();
  });
  return { manager, marker, connects: () => connects, activityWrites };
}

const echoSpec = (overrides: Partial<PluginSpec> = {}): PluginSpec => ({
  ...localSpec('echo.mjs'),
  maxConcurrentInstances: 10,
  ...overrides,
});

function textOf(result: { content: unknown[] }): string {
  return (result.content[0] as { text?: string } | undefined)?.text ?? '';
}

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

afterAll(async () => {
  await waitFor(() => descendantPids().length === 0, 'no leftover child processes');
  expect(descendantPids()).toEqual([]);
});

describe('InstanceManager with real plugin processes', () => {
  it('50 concurrent first calls start exactly one process', async () => {
    const { manager, marker, connects } = setup();
    const spec = echoSpec();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => manager.callTool('org-1', spec, 'echo', { message: `m${i}` })),
    );
    expect(results.map(textOf)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect(connects()).toBe(1);
    expect(pidsWithEnvMarker(marker.text)).toHaveLength(1);
    const [info] = manager.listInstances();
    expect(info?.state).toBe('running');
    expect(pidsWithEnvMarker(marker.text)).toEqual([info?.pid]);
  });

  it('the idle sweep stops an idle instance and frees its pid', async () => {
    const { manager, marker } = setup({ idleTimeoutMs: 100, idleSweepIntervalMs: 25 });
    await manager.callTool('org-1', echoSpec(), 'echo', { message: 'hi' });
    const pid = manager.listInstances()[0]?.pid;
    expect(pid).toBeTypeOf('number');
    await waitFor(
      () => manager.listInstances()[0]?.state !== 'running',
      'instance stopped by the idle sweep',
    );
    await waitFor(() => pidsWithEnvMarker(marker.text).length === 0, 'plugin process gone');
    expect(descendantPids()).not.toContain(pid);
  });

  it('a crash mid-call reports the exit code; the next call after backoff runs on a new process', async () => {
    const { manager } = setup();
    const spec = echoSpec();
    await manager.callTool('org-1', spec, 'echo', { message: 'warm' });
    const firstPid = manager.listInstances()[0]?.pid;
    const err = (await manager.callTool('org-1', spec, 'crash', {}).catch((e: unknown) => e)) as HayError;
    expect(err.code).toBe('INSTANCE_CRASHED');
    expect(err.message).toMatch(/code 3/);
    await waitFor(async () => {
      try {
        return textOf(await manager.callTool('org-1', spec, 'echo', { message: 'back' })) === 'back';
      } catch (e) {
        if ((e as HayError).code === 'INSTANCE_FAILED') return false;
        throw e;
      }
    }, 'a successful call after the backoff');
    const secondPid = manager.listInstances()[0]?.pid;
    expect(secondPid).toBeTypeOf('number');
    expect(secondPid).not.toBe(firstPid);
  });

  it('a full pool queues the next organization and fails it with CapacityError after queueTimeoutMs', async () => {
    const { manager, marker } = setup({ queueTimeoutMs: 300 });
    const spec = echoSpec({ maxConcurrentInstances: 1 });
    const busy = manager.callTool('org-1', spec, 'slow', { ms: 2_500 });
    await waitFor(() => manager.listInstances()[0]?.inFlight === 1, 'first instance busy');
    const queued = manager.callTool('org-2', spec, 'echo', { message: 'x' }).catch((e: unknown) => e);
    await waitFor(() => manager.queueDepth(spec.pluginKey) === 1, 'second organization queued');
    expect(await queued).toBeInstanceOf(CapacityError);
    expect(pidsWithEnvMarker(marker.text)).toHaveLength(1);
    expect(textOf(await busy)).toBe('slept 2500');

    // with the first instance idle, the next organization evicts it and gets its own process
    expect(textOf(await manager.callTool('org-2', spec, 'echo', { message: 'y' }))).toBe('y');
    await waitFor(() => pidsWithEnvMarker(marker.text).length === 1, 'only one plugin process');
    expect(manager.listInstances({ orgId: 'org-1' })[0]?.state).not.toBe('running');
  });

  it('close() stops every plugin process', async () => {
    const { manager, marker } = setup();
    await Promise.all(
      ['org-1', 'org-2', 'org-3'].map((org) => manager.callTool(org, echoSpec(), 'echo', { message: org })),
    );
    expect(pidsWithEnvMarker(marker.text)).toHaveLength(3);
    await manager.close();
    await waitFor(() => pidsWithEnvMarker(marker.text).length === 0, 'plugin processes gone');
  });
});
