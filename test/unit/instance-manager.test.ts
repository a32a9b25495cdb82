import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { CapacityError, HayError, InstanceError, PreconditionError, TimeoutError } from '../../src/errors.js';
import { InstanceManager } from '../../src/runtime/instance/index.js';
import type { InstanceManagerOptions, InstanceStateEvent } from '../../src/runtime/instance/index.js';
import type {
  ActivityStore,
  CallMetaProvider,
  CallOptions,
  CallToolResult,
  ConnectionEnd,
  ConnectionFactory,
  PluginConnection,
  PluginPreparer,
  PluginSpec,
  Tool,
} from '../../src/runtime/ports.js';
import { waitFor } from '../helpers/processes.js';

// ---- fakes ---------------------------------------------------------------------------------------------

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const text = (s: string): CallToolResult => ({ content: [{ type: 'text', text: s }] });

let nextPid = 1000;

/**
 * Tools: `echo` answers its args.text; `wait` resolves when the test opens `gate`; `hang` never answers
 * (rejects only when closed); `crash` makes the process "exit 1" mid-call (the request rejects first, the
 * exit report follows on the next tick, like a real stdio client).
 */
class FakeConnection implements PluginConnection {
  readonly pid = nextPid++;
  readonly transport = 'stdio' as const;
  closeCalls = 0;
  calls = 0;
  pingFails = false;
  tools: Tool[] = [{ name: 'echo', inputSchema: { type: 'object' } }];
  listToolsCalls = 0;
  gate = deferred<void>();
  private ended = false;
  private readonly endListeners: ((end: ConnectionEnd) => void)[] = [];
  private readonly toolsListeners: (() => void)[] = [];
  private readonly pending = new Set<(err: Error) => void>();

  constructor(
    readonly orgId: string,
    readonly spec: PluginSpec,
  ) {}

  get closed(): boolean {
    return this.closeCalls > 0;
  }

  async listTools(): Promise<Tool[]> {
    this.listToolsCalls++;
    return [...this.tools];
  }

  readonly metas: (Record<string, unknown> | undefined)[] = [];
  readonly signals: (AbortSignal | undefined)[] = [];

  callTool(name: string, args: Record<string, unknown>, options?: CallOptions): Promise<CallToolResult> {
    this.calls++;
    this.metas.push(options?.meta);
    this.signals.push(options?.signal);
    if (this.closed || this.ended) return Promise.reject(new Error('Not connected'));
    switch (name) {
      case 'echo':
        return Promise.resolve(text(String(args.text ?? '')));
      case 'wait':
        return this.pendingUntil(this.gate.promise.then(() => text('waited')));
      case 'hang':
        return this.pendingUntil(new Promise<CallToolResult>(() => {}));
      case 'crash': {
        const p = Promise.reject(new Error('Connection closed'));
        setImmediate(() => this.end({ kind: 'exited', code: 1, signal: null }));
        return p;
      }
      default:
        return Promise.resolve({ isError: true, content: [{ type: 'text', text: `unknown tool ${name}` }] });
    }
  }

  async ping(): Promise<void> {
    if (this.pingFails) throw new Error('ping timed out');
  }

  onEnd(listener: (end: ConnectionEnd) => void): void {
    this.endListeners.push(listener);
  }

  onToolsChanged(listener: () => void): void {
    this.toolsListeners.push(listener);
  }

  async usage() {
    return { rssBytes: 1000, cpuSeconds: 0.5 };
  }

  async close(): Promise<void> {
    this.closeCalls++;
    for (const reject of this.pending) reject(new Error('Connection closed'));
    this.pending.clear();
  }

  /** Simulates the process ending on its own. */
  end(end: ConnectionEnd): void {
    if (this.ended || this.closed) return;
    this.ended = true;
    for (const reject of this.pending) reject(new Error('Connection closed'));
    this.pending.clear();
    for (const l of this.endListeners) l(end);
  }

  announceToolsChanged(): void {
    for (const l of this.toolsListeners) l();
  }

  private pendingUntil(p: Promise<CallToolResult>): Promise<CallToolResult> {
    return new Promise((resolve, reject) => {
      this.pending.add(reject);
      p.then(resolve, reject).finally(() => this.pending.delete(reject));
    });
  }
}

class FakeFactory implements ConnectionFactory {
  readonly connections: FakeConnection[] = [];
  connectCalls = 0;
  /** When set, connect waits for it. */
  connectGate: Promise<void> | undefined;
  /** Errors thrown by the next connects, in order. */
  failures: Error[] = [];

  async connect(orgId: string, spec: PluginSpec, options: { signal?: AbortSignal; timeoutMs: number }) {
    this.connectCalls++;
    if (this.connectGate) await this.connectGate;
    options.signal?.throwIfAborted();
    const failure = this.failures.shift();
    if (failure) throw failure;
    const conn = new FakeConnection(orgId, spec);
    this.connections.push(conn);
    return conn;
  }

  for(orgId: string): FakeConnection[] {
    return this.connections.filter((c) => c.orgId === orgId);
  }
  last(): FakeConnection {
    const c = this.connections.at(-1);
    if (!c) throw new Error('no connection yet');
    return c;
  }
  open(): FakeConnection[] {
    return this.connections.filter((c) => !c.closed);
  }
}

class CountingPreparer implements PluginPreparer {
  calls = 0;
  async ensureReady(): Promise<void> {
    this.calls++;
  }
}

class RecordingActivity implements ActivityStore {
  batches: { orgId: string; pluginKey: string; at: Date }[][] = [];
  async recordActivity(entries: readonly { orgId: string; pluginKey: string; at: Date }[]): Promise<void> {
    this.batches.push([...entries]);
  }
}

function makeSpec(overrides: Partial<PluginSpec> = {}, idleTimeoutMs?: number): PluginSpec {
  return {
    pluginKey: 'pk-echo',
    pluginId: 'echo',
    version: '1.0.0',
    checksum: 'sum-1',
    rootDir: '/nonexistent/echo',
    sourceType: 'core',
    organizationId: null,
    manifest: {
      id: 'echo',
      name: 'Echo',
      version: '1.0.0',
      type: ['mcp-connector'],
      ...(idleTimeoutMs !== undefined ? { runtime: { idleTimeoutMs } } : {}),
    },
    maxConcurrentInstances: 10,
    ...overrides,
  };
}

/** Big timers by default so nothing fires unless a test asks for it. */
const BASE_OPTIONS: InstanceManagerOptions = {
  idleTimeoutMs: 60_000,
  idleSweepIntervalMs: 60_000,
  queueTimeoutMs: 5_000,
  callTimeoutMs: 5_000,
  startTimeoutMs: 5_000,
  healthIntervalMs: 60_000,
  pingBeforeReuseAfterMs: 60_000,
  crashBackoffBaseMs: 100,
  crashBackoffMaxMs: 1_000,
  activityFlushIntervalMs: 60_000,
  shutdownDrainMs: 2_000,
  crashReportGraceMs: 1_000,
};

interface Harness {
  manager: InstanceManager;
  factory: FakeFactory;
  preparer: CountingPreparer;
  activity: RecordingActivity;
  clock: { t: number };
  events: InstanceStateEvent[];
}

const managers: InstanceManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

function setup(
  options: Partial<InstanceManagerOptions> = {},
  opts: { fakeClock?: boolean; callMeta?: CallMetaProvider } = {},
): Harness {
  const factory = new FakeFactory();
  const preparer = new CountingPreparer();
  const activity = new RecordingActivity();
  const clock = { t: 1_000_000 };
  const manager = new InstanceManager({
    logger: createLogger({ level: 'silent' }),
    connections: factory,
    preparer,
    activity,
    options: { ...BASE_OPTIONS, ...options },
    ...(opts.fakeClock ? { now: () => clock.t } : {}),
    ...(opts.callMeta ? { callMeta: opts.callMeta } : {}),
  });
  const events: InstanceStateEvent[] = [];
  manager.on('state', (e) => events.push(e));
  managers.push(manager);
  return { manager, factory, preparer, activity, clock, events };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

const stateOf = (m: InstanceManager, orgId: string, pluginKey = 'pk-echo') =>
  m.listInstances({ orgId }).find((i) => i.pluginKey === pluginKey)?.state;

// ---- tests ---------------------------------------------------------------------------------------------

describe('InstanceManager start sharing and reuse', () => {
  it('50 concurrent first calls share exactly one preparation and one connect', async () => {
    const { manager, factory, preparer } = setup();
    const gate = deferred();
    factory.connectGate = gate.promise;
    const spec = makeSpec();
    const calls = Array.from({ length: 50 }, (_, i) =>
      manager.callTool('org-a', spec, 'echo', { text: `m${i}` }),
    );
    await waitFor(() => factory.connectCalls === 1, 'the connect');
    gate.resolve();
    const results = await Promise.all(calls);
    expect(results.map((r) => (r.content[0] as { text: string }).text)).toEqual(
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    expect(factory.connectCalls).toBe(1);
    expect(preparer.calls).toBe(1);
  });

  it('reuses a warm instance and reports it in listInstances as a snapshot', async () => {
    const { manager, factory, events } = setup();
    const spec = makeSpec();
    await manager.callTool('org-a', spec, 'echo', { text: '1' });
    await manager.callTool('org-a', spec, 'echo', { text: '2' });
    expect(factory.connectCalls).toBe(1);
    expect(factory.last().calls).toBe(2);
    const [info] = manager.listInstances({ orgId: 'org-a' });
    expect(info).toMatchObject({
      orgId: 'org-a',
      pluginKey: 'pk-echo',
      pluginId: 'echo',
      state: 'running',
      pid: factory.last().pid,
      inFlight: 0,
      failures: 0,
      lastError: null,
      retryAfter: null,
    });
    if (info) info.state = 'stopped';
    expect(stateOf(manager, 'org-a')).toBe('running');
    expect(events.map((e) => `${e.from}->${e.to}`)).toEqual(['stopped->starting', 'starting->running']);
    expect(manager.listInstances({ orgId: 'other' })).toEqual([]);
  });

  it('ensureInstanceRunning starts without a call and keeps separate instances per organization', async () => {
    const { manager, factory } = setup();
    const spec = makeSpec();
    await Promise.all([
      manager.ensureInstanceRunning('org-a', spec),
      manager.ensureInstanceRunning('org-b', spec),
    ]);
    expect(factory.connectCalls).toBe(2);
    expect(new Set(factory.connections.map((c) => c.orgId))).toEqual(new Set(['org-a', 'org-b']));
  });

  it('a failed start reports the cause; the next call retries at once, a second failure backs off', async () => {
    const { manager, factory } = setup({}, { fakeClock: true });
    factory.failures.push(new Error('spawn node ENOENT'), new Error('spawn node ENOENT'));
    const spec = makeSpec();
    const err = await rejection(manager.callTool('org-a', spec, 'echo', {}));
    expect(err).toBeInstanceOf(InstanceError);
    expect((err as InstanceError).code).toBe('INSTANCE_FAILED');
    expect((err as Error).message).toContain('spawn node ENOENT');
    expect((err as InstanceError).details).toMatchObject({ retryAfterMs: 0, failures: 1 });
    const second = await rejection(manager.callTool('org-a', spec, 'echo', {}));
    expect(factory.connectCalls).toBe(2);
    expect((second as InstanceError).details).toMatchObject({ retryAfterMs: 100, failures: 2 });
    const backoff = await rejection(manager.callTool('org-a', spec, 'echo', {}, { timeoutMs: 50 }));
    expect(backoff).toBeInstanceOf(PreconditionError);
    expect(factory.connectCalls).toBe(2);
  });

  it('an aborted caller leaves; the start is aborted only when no caller waits for it', async () => {
    const { manager, factory } = setup();
    const gate = deferred();
    factory.connectGate = gate.promise;
    const spec = makeSpec();
    const ac = new AbortController();
    const aborted = manager.callTool('org-a', spec, 'echo', { text: 'x' }, { signal: ac.signal });
    const kept = manager.callTool('org-a', spec, 'echo', { text: 'y' });
    await waitFor(() => factory.connectCalls === 1, 'connect');
    ac.abort(new Error('caller went away'));
    expect(((await rejection(aborted)) as Error).message).toBe('caller went away');
    gate.resolve();
    expect(await kept).toEqual(text('y'));
  });
});

describe('InstanceManager crashes and backoff', () => {
  it('a crash mid-call fails with INSTANCE_CRASHED naming the exit code; the next call restarts at once', async () => {
    const { manager, factory, clock } = setup({}, { fakeClock: true });
    const spec = makeSpec();
    await manager.callTool('org-a', spec, 'echo', { text: 'warm' });
    const err = await rejection(manager.callTool('org-a', spec, 'crash', {}));
    expect(err).toBeInstanceOf(InstanceError);
    expect((err as InstanceError).code).toBe('INSTANCE_CRASHED');
    expect((err as Error).message).toMatch(/exited with code 1/);
    expect((err as Error).message).toMatch(/restarted on the next call/);
    expect((err as InstanceError).details).toMatchObject({ retryAfterMs: 0, failures: 1, exitCode: 1 });
    const [info] = manager.listInstances();
    expect(info).toMatchObject({ state: 'failed', failures: 1, retryAfter: clock.t });
    expect(info?.lastError).toMatch(/exited with code 1/);
    expect(factory.connections[0]?.closed).toBe(true);

    // same clock instant: no backoff after a single crash
    expect(await manager.callTool('org-a', spec, 'echo', { text: 'again' })).toEqual(text('again'));
    expect(factory.connectCalls).toBe(2);
    expect(manager.listInstances()[0]).toMatchObject({ state: 'running', failures: 0 });
  });

  it('a crash loop backs off exponentially from the second crash up to the cap; connect is not called during backoff', async () => {
    const { manager, factory, clock } = setup(
      { crashBackoffBaseMs: 100, crashBackoffMaxMs: 500 },
      { fakeClock: true },
    );
    const spec = makeSpec();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = clock.t;
      const crash = await rejection(manager.callTool('org-a', spec, 'crash', {}));
      expect((crash as HayError).code).toBe('INSTANCE_CRASHED');
      const retryAfter = manager.listInstances()[0]?.retryAfter ?? 0;
      delays.push(retryAfter - before);
      if (i === 0) continue;

      const connects = factory.connectCalls;
      // a timeout no longer than the remaining backoff: refused at once instead of waiting
      const blocked = await rejection(
        manager.callTool('org-a', spec, 'echo', {}, { timeoutMs: retryAfter - before }),
      );
      expect(blocked).toBeInstanceOf(PreconditionError);
      expect((blocked as PreconditionError).code).toBe('INSTANCE_FAILED');
      expect((blocked as PreconditionError).details).toMatchObject({
        retryAfterMs: retryAfter - before,
        failures: i + 1,
      });
      expect((blocked as Error).message).toMatch(/exited with code 1/);
      expect(factory.connectCalls).toBe(connects);
      clock.t = retryAfter;
    }
    expect(delays).toEqual([0, 100, 200, 400, 500]);
    await manager.callTool('org-a', spec, 'echo', { text: 'ok' });
    expect(manager.listInstances()[0]?.failures).toBe(0);
  });

  it('a crash while idle marks the instance failed with the reason; the next call starts fresh at once', async () => {
    const { manager, factory } = setup({}, { fakeClock: true });
    const spec = makeSpec();
    await manager.callTool('org-a', spec, 'echo', {});
    factory.last().end({ kind: 'exited', code: null, signal: 'SIGKILL', limit: 'memory' });
    expect(manager.listInstances()[0]).toMatchObject({ state: 'failed', failures: 1 });
    expect(manager.listInstances()[0]?.lastError).toMatch(/memory limit/);
    expect(await manager.callTool('org-a', spec, 'echo', { text: 'back' })).toEqual(text('back'));
    expect(factory.connectCalls).toBe(2);
  });

  it('a call arriving during a backoff shorter than its timeout waits for the restart instead of failing', async () => {
    const { manager, factory, events } = setup({ crashBackoffBaseMs: 80, crashBackoffMaxMs: 80 });
    const spec = makeSpec();
    await rejection(manager.callTool('org-a', spec, 'crash', {}));
    await rejection(manager.callTool('org-a', spec, 'crash', {}));
    const [info] = manager.listInstances();
    expect(info).toMatchObject({ state: 'failed', failures: 2 });
    expect((info?.retryAfter ?? 0) - Date.now()).toBeGreaterThan(0);
    const calls = ['a', 'b', 'c'].map((t) => manager.callTool('org-a', spec, 'echo', { text: t }));
    expect(await Promise.all(calls)).toEqual([text('a'), text('b'), text('c')]);
    // the waiters shared one restart, made after the backoff ended
    expect(factory.connectCalls).toBe(3);
    const restart = events.filter((e) => e.to === 'starting').at(-1);
    expect(restart?.from).toBe('failed');
  });

  it('a caller waiting out a backoff leaves on abort; close() ends the wait with SHUTTING_DOWN', async () => {
    const { manager, factory } = setup({
      crashBackoffBaseMs: 60_000,
      crashBackoffMaxMs: 60_000,
      callTimeoutMs: 120_000,
    });
    const spec = makeSpec();
    await rejection(manager.callTool('org-a', spec, 'crash', {}));
    await rejection(manager.callTool('org-a', spec, 'crash', {}));
    const ac = new AbortController();
    const aborted = manager.callTool('org-a', spec, 'echo', {}, { signal: ac.signal });
    const waiting = manager.callTool('org-a', spec, 'echo', {});
    ac.abort(new Error('caller went away'));
    expect(((await rejection(aborted)) as Error).message).toBe('caller went away');
    const closing = manager.close();
    expect(((await rejection(waiting)) as HayError).code).toBe('SHUTTING_DOWN');
    await closing;
    expect(factory.connectCalls).toBe(2);
  });

  it('a hanging call times out; the wedged connection is closed and replaced on the next call', async () => {
    const { manager, factory } = setup({ callTimeoutMs: 5_000 });
    const spec = makeSpec();
    await manager.callTool('org-a', spec, 'echo', {});
    const other = manager.callTool('org-a', spec, 'wait', {});
    const err = await rejection(manager.callTool('org-a', spec, 'hang', {}, { timeoutMs: 30 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/within 30 ms/);
    expect(factory.connections[0]?.closed).toBe(true);
    const otherErr = await rejection(other);
    expect((otherErr as HayError).code).toBe('INSTANCE_FAILED');
    await waitFor(() => stateOf(manager, 'org-a') === 'stopped', 'stopped state');
    expect(await manager.callTool('org-a', spec, 'echo', { text: 'fresh' })).toEqual(text('fresh'));
    expect(factory.connectCalls).toBe(2);
  });
});

describe('InstanceManager request signals (CallOptions.signalPerRequest)', () => {
  it('hands the request signal to the connection as is; without the flag each call gets a fresh one', async () => {
    const { manager, factory } = setup();
    const spec = makeSpec();
    const request = new AbortController();
    await manager.callTool('org-a', spec, 'echo', {}, { signal: request.signal, signalPerRequest: true });
    await manager.callTool('org-a', spec, 'echo', {}, { signal: request.signal });
    const [own, fresh] = factory.connections[0]?.signals ?? [];
    expect(own).toBe(request.signal);
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(request.signal);
  });

  it('a caller abort rejects with its reason; a deadline fails with TimeoutError and stops the instance', async () => {
    const { manager, factory } = setup({ callTimeoutMs: 5_000 });
    const spec = makeSpec();
    const aborted = new AbortController();
    const call = manager.callTool(
      'org-a',
      spec,
      'hang',
      {},
      { signal: aborted.signal, signalPerRequest: true },
    );
    await waitFor(() => factory.connections[0]?.calls === 1, 'the call to reach the connection');
    aborted.abort(new Error('client went away'));
    expect(((await rejection(call)) as Error).message).toBe('client went away');
    const request = new AbortController();
    const err = await rejection(
      manager.callTool(
        'org-a',
        spec,
        'hang',
        {},
        { signal: request.signal, signalPerRequest: true, timeoutMs: 30 },
      ),
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect(request.signal.aborted).toBe(false);
    expect(factory.connections[0]?.closed).toBe(true);
    await waitFor(() => stateOf(manager, 'org-a') === 'stopped', 'stopped state');
    expect(await manager.callTool('org-a', spec, 'echo', { text: 'fresh' })).toEqual(text('fresh'));
  });
});

describe('InstanceManager pool', () => {
  it('queues FIFO when the plugin is at its limit, serves waiters as slots free, and times out with CapacityError', async () => {
    const { manager, factory } = setup({ queueTimeoutMs: 5_000 });
    const spec = makeSpec({ maxConcurrentInstances: 1 });
    const busy = manager.callTool('org-a', spec, 'wait', {});
    await waitFor(() => factory.connectCalls === 1, 'first instance');

    const served: string[] = [];
    const waiters = ['org-b', 'org-c', 'org-d'].map((org) =>
      manager.callTool(org, spec, 'wait', {}).then(() => served.push(org)),
    );
    await waitFor(() => manager.queueDepth('pk-echo') === 3, 'three queued callers');
    expect(manager.queueDepth()).toBe(3);
    expect(factory.connectCalls).toBe(1);

    factory.connections[0]?.gate.resolve();
    await busy;
    for (const org of ['org-b', 'org-c', 'org-d']) {
      await waitFor(() => factory.for(org).length === 1, `${org} started`);
      expect(factory.open().length).toBe(1);
      factory.for(org)[0]?.gate.resolve();
      await waitFor(() => served.includes(org), `${org} served`);
    }
    await Promise.all(waiters);
    expect(served).toEqual(['org-b', 'org-c', 'org-d']);
    expect(factory.connections.map((c) => c.orgId)).toEqual(['org-a', 'org-b', 'org-c', 'org-d']);
    expect(manager.queueDepth('pk-echo')).toBe(0);
  });

  it('fails a waiter with CapacityError after queueTimeoutMs when no instance becomes free', async () => {
    const { manager, factory } = setup({ queueTimeoutMs: 40 });
    const spec = makeSpec({ maxConcurrentInstances: 1 });
    const busy = manager.callTool('org-a', spec, 'wait', {});
    await waitFor(() => factory.connectCalls === 1, 'first instance');
    const err = await rejection(manager.callTool('org-b', spec, 'echo', {}));
    expect(err).toBeInstanceOf(CapacityError);
    expect((err as Error).message).toMatch(/echo is at its limit of 1 concurrent instance/);
    expect((err as CapacityError).details).toMatchObject({ pluginKey: 'pk-echo', limit: 1 });
    expect(manager.queueDepth()).toBe(0);
    expect(factory.connectCalls).toBe(1);
    factory.last().gate.resolve();
    await busy;
  });

  it('an aborted waiter leaves the queue', async () => {
    const { manager, factory } = setup();
    const spec = makeSpec({ maxConcurrentInstances: 1 });
    const busy = manager.callTool('org-a', spec, 'wait', {});
    await waitFor(() => factory.connectCalls === 1, 'first instance');
    const ac = new AbortController();
    const waiting = manager.callTool('org-b', spec, 'echo', {}, { signal: ac.signal });
    await waitFor(() => manager.queueDepth('pk-echo') === 1, 'queued');
    ac.abort(new Error('client disconnected'));
    expect(((await rejection(waiting)) as Error).message).toBe('client disconnected');
    await waitFor(() => manager.queueDepth('pk-echo') === 0, 'queue emptied');
    factory.last().gate.resolve();
    await busy;
    expect(factory.connectCalls).toBe(1);
  });

  it('stops the least recently used idle instance of the plugin to make room', async () => {
    const { manager, factory, clock } = setup({}, { fakeClock: true });
    const spec = makeSpec({ maxConcurrentInstances: 2 });
    await manager.callTool('org-a', spec, 'echo', {});
    clock.t += 10;
    await manager.callTool('org-b', spec, 'echo', {});
    clock.t += 10;
    await manager.callTool('org-a', spec, 'echo', {}); // org-b is now least recently used
    clock.t += 10;
    await manager.callTool('org-c', spec, 'echo', { text: 'c' });
    const [a, b, c] = factory.connections;
    expect(b?.closed).toBe(true);
    expect(a?.closed).toBe(false);
    expect(c?.closed).toBe(false);
    expect(stateOf(manager, 'org-b')).toBe('stopped');
    expect(manager.queueDepth()).toBe(0);
  });

  it('never evicts an instance with a call in flight; other plugins are not affected', async () => {
    const { manager, factory } = setup({ queueTimeoutMs: 40 });
    const spec = makeSpec({ maxConcurrentInstances: 1 });
    const busy = manager.callTool('org-a', spec, 'wait', {});
    await waitFor(() => factory.connectCalls === 1, 'first');
    const other = makeSpec({ pluginKey: 'pk-other', pluginId: 'other', maxConcurrentInstances: 1 });
    await manager.callTool('org-b', other, 'echo', {});
    expect(await rejection(manager.callTool('org-c', spec, 'echo', {}))).toBeInstanceOf(CapacityError);
    expect(factory.connections[0]?.closed).toBe(false);
    factory.connections[0]?.gate.resolve();
    await busy;
  });
});

describe('InstanceManager idle sweep and health', () => {
  it('the sweep stops instances idle past the timeout, never one with a call in flight', async () => {
    const { manager, factory, clock } = setup({ idleTimeoutMs: 1_000 }, { fakeClock: true });
    const spec = makeSpec();
    await manager.callTool('org-idle', spec, 'echo', {});
    const busy = manager.callTool('org-busy', spec, 'wait', {});
    await waitFor(() => factory.for('org-busy').length === 1, 'busy instance');
    clock.t += 1_001;
    await manager.cleanupInactiveInstances();
    expect(factory.for('org-idle')[0]?.closed).toBe(true);
    expect(stateOf(manager, 'org-idle')).toBe('stopped');
    expect(factory.for('org-busy')[0]?.closed).toBe(false);
    expect(stateOf(manager, 'org-busy')).toBe('running');

    factory.for('org-busy')[0]?.gate.resolve();
    await busy;
    await manager.cleanupInactiveInstances();
    expect(factory.for('org-busy')[0]?.closed).toBe(false);
    clock.t += 1_001;
    await manager.cleanupInactiveInstances();
    expect(factory.for('org-busy')[0]?.closed).toBe(true);
    // a second sweep forgets stopped instances
    await manager.cleanupInactiveInstances();
    expect(manager.listInstances()).toEqual([]);
  });

  it('honours the per-plugin idle timeout from the manifest', async () => {
    const { manager, factory, clock } = setup({ idleTimeoutMs: 60_000 }, { fakeClock: true });
    await manager.callTool('org-a', makeSpec({}, 100), 'echo', {});
    await manager.callTool('org-a', makeSpec({ pluginKey: 'pk-2', pluginId: 'two' }), 'echo', {});
    clock.t += 101;
    await manager.cleanupInactiveInstances();
    expect(factory.connections.map((c) => c.closed)).toEqual([true, false]);
  });

  it('the sweep timer stops idle instances by itself after start()', async () => {
    const { manager, factory } = setup({ idleTimeoutMs: 30, idleSweepIntervalMs: 10 });
    manager.start();
    await manager.callTool('org-a', makeSpec(), 'echo', {});
    await waitFor(() => factory.last().closed, 'idle instance closed by the sweep');
    await waitFor(() => stateOf(manager, 'org-a') !== 'running', 'state left running');
  });

  it('pings before reusing an instance idle for long; a failed ping gives the caller a fresh instance', async () => {
    const { manager, factory, clock } = setup({ pingBeforeReuseAfterMs: 500 }, { fakeClock: true });
    const spec = makeSpec();
    await manager.callTool('org-a', spec, 'echo', {});
    clock.t += 100;
    factory.last().pingFails = true;
    await manager.callTool('org-a', spec, 'echo', {});
    expect(factory.connectCalls).toBe(1);
    clock.t += 501;
    expect(await manager.callTool('org-a', spec, 'echo', { text: 'after ping' })).toEqual(text('after ping'));
    expect(factory.connectCalls).toBe(2);
    expect(factory.connections[0]?.closed).toBe(true);
    expect(manager.listInstances()[0]?.lastError).toMatch(/health ping/);
  });

  it('the health timer pings idle instances and replaces one that stops answering', async () => {
    const { manager, factory, events } = setup({ healthIntervalMs: 10 });
    manager.start();
    const spec = makeSpec();
    await manager.callTool('org-a', spec, 'echo', {});
    factory.last().pingFails = true;
    await waitFor(() => stateOf(manager, 'org-a') === 'failed', 'failed after ping');
    expect(events.at(-1)).toMatchObject({ from: 'running', to: 'failed', pluginId: 'echo' });
    expect(factory.last().closed).toBe(true);
    await manager.callTool('org-a', spec, 'echo', {});
    expect(factory.connectCalls).toBe(2);
  });
});

describe('InstanceManager restarts and stops', () => {
  it('a call with a new checksum drains the running instance, then starts the new version', async () => {
    const { manager, factory } = setup();
    const v1 = makeSpec();
    const v2 = makeSpec({ checksum: 'sum-2', version: '1.1.0' });
    await manager.callTool('org-a', v1, 'echo', {});
    const inFlight = manager.callTool('org-a', v1, 'wait', {});
    await waitFor(() => manager.listInstances()[0]?.inFlight === 1, 'call in flight');
    const newer = manager.callTool('org-a', v2, 'echo', { text: 'v2' });
    await waitFor(
      () => stateOf(manager, 'org-a') === 'running' && factory.connectCalls === 1,
      'still draining',
    );
    expect(factory.connections[0]?.closed).toBe(false);
    factory.connections[0]?.gate.resolve();
    expect(await inFlight).toEqual(text('waited'));
    expect(await newer).toEqual(text('v2'));
    expect(factory.connections[0]?.closed).toBe(true);
    expect(factory.connections[1]?.spec.checksum).toBe('sum-2');
    expect(manager.listInstances()[0]).toMatchObject({
      checksum: 'sum-2',
      version: '1.1.0',
      state: 'running',
    });
  });

  it('restartPlugin drains every instance of the plugin; new calls wait and get the new version', async () => {
    const { manager, factory } = setup();
    const v1 = makeSpec();
    await manager.callTool('org-a', v1, 'echo', {});
    await manager.callTool('org-b', v1, 'echo', {});
    const inFlight = manager.callTool('org-a', v1, 'wait', {});
    await waitFor(() => manager.listInstances({ orgId: 'org-a' })[0]?.inFlight === 1, 'in flight');
    const restart = manager.restartPlugin('pk-echo');
    await waitFor(() => factory.for('org-b')[0]?.closed === true, 'idle org-b stopped');
    const v2 = makeSpec({ checksum: 'sum-2' });
    const waiting = manager.callTool('org-a', v2, 'echo', { text: 'new' });
    expect(factory.for('org-a')[0]?.closed).toBe(false);
    factory.for('org-a')[0]?.gate.resolve();
    await inFlight;
    await restart;
    expect(await waiting).toEqual(text('new'));
    expect(factory.for('org-a').map((c) => [c.spec.checksum, c.closed])).toEqual([
      ['sum-1', true],
      ['sum-2', false],
    ]);
  });

  it('restartPlugin during a start replaces the new connection once it is up', async () => {
    const { manager, factory } = setup();
    const gate = deferred();
    factory.connectGate = gate.promise;
    const call = manager.callTool('org-a', makeSpec(), 'echo', { text: 'after restart' });
    await waitFor(() => factory.connectCalls === 1, 'connecting');
    await manager.restartPlugin('pk-echo');
    gate.resolve();
    expect(await call).toEqual(text('after restart'));
    expect(factory.connections.map((c) => c.closed)).toEqual([true, false]);
  });

  it('restartPlugin clears a failed instance backoff', async () => {
    const { manager, factory } = setup({ crashBackoffBaseMs: 60_000, crashBackoffMaxMs: 60_000 });
    await rejection(manager.callTool('org-a', makeSpec(), 'crash', {}));
    await rejection(manager.callTool('org-a', makeSpec(), 'crash', {}));
    expect(await rejection(manager.callTool('org-a', makeSpec(), 'echo', {}))).toBeInstanceOf(
      PreconditionError,
    );
    await manager.restartPlugin('pk-echo');
    await manager.callTool('org-a', makeSpec({ checksum: 'sum-2' }), 'echo', {});
    expect(factory.connectCalls).toBe(3);
  });

  it('stopAllForOrganization stops only that organization; stopAllForPlugin only that plugin', async () => {
    const { manager, factory } = setup();
    const p1 = makeSpec();
    const p2 = makeSpec({ pluginKey: 'pk-2', pluginId: 'two' });
    await manager.callTool('org-a', p1, 'echo', {});
    await manager.callTool('org-a', p2, 'echo', {});
    await manager.callTool('org-b', p1, 'echo', {});
    await manager.stopAllForOrganization('org-a');
    expect(factory.connections.map((c) => `${c.orgId}/${c.spec.pluginKey}:${c.closed}`)).toEqual([
      'org-a/pk-echo:true',
      'org-a/pk-2:true',
      'org-b/pk-echo:false',
    ]);
    expect(manager.listInstances({ orgId: 'org-a' }).map((i) => i.state)).toEqual(['stopped', 'stopped']);
    await manager.callTool('org-a', p2, 'echo', {});
    await manager.stopAllForPlugin('pk-echo', 'plugin disabled');
    expect(factory.open().map((c) => `${c.orgId}/${c.spec.pluginKey}`)).toEqual(['org-a/pk-2']);
  });

  it('stopInstance waits for in-flight calls before closing', async () => {
    const { manager, factory } = setup();
    const spec = makeSpec();
    const call = manager.callTool('org-a', spec, 'wait', {});
    await waitFor(() => manager.listInstances()[0]?.inFlight === 1, 'in flight');
    let stopped = false;
    const stop = manager.stopInstance('org-a', 'pk-echo', 'disabled').then(() => (stopped = true));
    await waitFor(() => factory.last().calls === 1, 'call reached the plugin');
    expect(stopped).toBe(false);
    expect(factory.last().closed).toBe(false);
    factory.last().gate.resolve();
    expect(await call).toEqual(text('waited'));
    await stop;
    expect(factory.last().closed).toBe(true);
  });
});

describe('InstanceManager tools, activity, usage', () => {
  it('caches listTools per instance and refreshes it on tools/list_changed with an event', async () => {
    const { manager, factory } = setup();
    const spec = makeSpec();
    const changed: string[] = [];
    manager.on('toolsChanged', (e) => changed.push(`${e.orgId}/${e.pluginKey}`));
    expect((await manager.listTools('org-a', spec)).map((t) => t.name)).toEqual(['echo']);
    await manager.listTools('org-a', spec);
    expect(factory.last().listToolsCalls).toBe(1);
    factory.last().tools = [...factory.last().tools, { name: 'second', inputSchema: { type: 'object' } }];
    factory.last().announceToolsChanged();
    expect(changed).toEqual(['org-a/pk-echo']);
    expect((await manager.listTools('org-a', spec)).map((t) => t.name)).toEqual(['echo', 'second']);
    expect(factory.last().listToolsCalls).toBe(2);
  });

  it('a storm of tools/list_changed is one event at once and one at the window end (it was one per announcement)', async () => {
    // found 2026-12-02: each announcement made the gateway re-list the plugin, read the stored list and
    // notify every session; a plugin looping on list_changed made the host do that thousands of times a second
    const { manager, factory } = setup({ listChangedWindowMs: 30 });
    const spec = makeSpec();
    const changed: number[] = [];
    manager.on('toolsChanged', () => changed.push(Date.now()));
    await manager.listTools('org-a', spec);
    const conn = factory.last();
    for (let i = 0; i < 1000; i++) conn.announceToolsChanged();
    expect(changed).toHaveLength(1);
    // the cached list is dropped on every announcement, not only on the events
    conn.tools = [...conn.tools, { name: 'later', inputSchema: { type: 'object' } }];
    conn.announceToolsChanged();
    expect((await manager.listTools('org-a', spec)).map((t) => t.name)).toContain('later');
    await waitFor(() => changed.length === 2, 'the trailing event');
    // the trailing event opened a new window: another storm waits for its end
    for (let i = 0; i < 100; i++) conn.announceToolsChanged();
    expect(changed).toHaveLength(2);
    await waitFor(() => changed.length === 3, 'the next trailing event');
    await manager.close();
    expect(changed).toHaveLength(3);
  });

  it('a trailing list_changed event owed by a connection that ended is dropped with its timer', async () => {
    const { manager, factory } = setup({ listChangedWindowMs: 60_000 });
    const spec = makeSpec();
    const changed: string[] = [];
    manager.on('toolsChanged', (e) => changed.push(e.orgId));
    await manager.listTools('org-a', spec);
    factory.last().announceToolsChanged();
    // the second announcement within the window schedules the trailing event: that timer, and only it
    const setSpy = vi.spyOn(globalThis, 'setTimeout');
    factory.last().announceToolsChanged();
    const trailing = setSpy.mock.results.map((r) => r.value as unknown);
    setSpy.mockRestore();
    expect(trailing).toHaveLength(1);
    expect(changed).toEqual(['org-a']);
    const clearSpy = vi.spyOn(globalThis, 'clearTimeout');
    await manager.close();
    const cleared = clearSpy.mock.calls.map((c) => c[0] as unknown);
    clearSpy.mockRestore();
    expect(cleared).toContain(trailing[0]);
    expect(changed).toEqual(['org-a']);
  });

  it('writes activity in batches, never once per call, and flushes the rest on close', async () => {
    const { manager, activity } = setup({ activityFlushIntervalMs: 20 });
    manager.start();
    const spec = makeSpec();
    for (let i = 0; i < 40; i++) await manager.callTool(i % 2 ? 'org-a' : 'org-b', spec, 'echo', {});
    await waitFor(() => activity.batches.length > 0, 'a flush');
    expect(activity.batches.length).toBeLessThan(40);
    const first = activity.batches[0] ?? [];
    expect(new Set(first.map((e) => e.orgId)).size).toBe(first.length);

    const flushed = activity.batches.length;
    manager.updateActivityTimestamp('org-c', 'pk-echo');
    await manager.close();
    expect(activity.batches.length).toBe(flushed + 1);
    expect(activity.batches.at(-1)?.map((e) => e.orgId)).toEqual(['org-c']);
  });

  it('without a flush timer, 100 calls produce no writes until close writes one batch', async () => {
    const { manager, activity } = setup();
    const spec = makeSpec();
    for (let i = 0; i < 100; i++) await manager.callTool(`org-${i % 3}`, spec, 'echo', {});
    expect(activity.batches).toEqual([]);
    await manager.close();
    expect(activity.batches.length).toBe(1);
    expect(activity.batches[0]?.map((e) => e.orgId).sort()).toEqual(['org-0', 'org-1', 'org-2']);
  });

  it('usage() aggregates connection usage per running instance', async () => {
    const { manager } = setup();
    await manager.callTool('org-a', makeSpec(), 'echo', {});
    await manager.callTool('org-b', makeSpec(), 'echo', {});
    const usage = await manager.usage();
    expect(usage.instances).toHaveLength(2);
    expect(usage.totalRssBytes).toBe(2000);
    expect(usage.totalCpuSeconds).toBe(1);
  });
});

describe('InstanceManager close', () => {
  /**
   * Counts timers created through the globals that are still pending (not fired, not cleared). Unref'd
   * timers are invisible to process.getActiveResourcesInfo(), so the test tracks them itself.
   */
  function trackTimers() {
    const live = new Set<unknown>();
    const orig = { setTimeout, clearTimeout, setInterval, clearInterval };
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const handle = orig.setTimeout(
        (...a: unknown[]) => {
          live.delete(handle);
          fn(...a);
        },
        ms,
        ...args,
      );
      live.add(handle);
      return handle;
    };
    g.clearTimeout = (h: NodeJS.Timeout | undefined) => {
      live.delete(h);
      orig.clearTimeout(h);
    };
    g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const handle = orig.setInterval(fn, ms, ...args);
      live.add(handle);
      return handle;
    };
    g.clearInterval = (h: NodeJS.Timeout | undefined) => {
      live.delete(h);
      orig.clearInterval(h);
    };
    return {
      pending: () => live.size,
      restore: () => Object.assign(globalThis, orig),
    };
  }

  it('stops everything, rejects waiters, refuses new calls, and leaves no timers', async () => {
    const timers = trackTimers();
    try {
      const { manager, factory } = setup({
        idleSweepIntervalMs: 10,
        healthIntervalMs: 10,
        activityFlushIntervalMs: 10,
        queueTimeoutMs: 60_000,
        shutdownDrainMs: 50,
      });
      manager.start();
      manager.start();
      expect(timers.pending()).toBe(3);
      const spec = makeSpec({ maxConcurrentInstances: 1 });
      const busy = rejection(manager.callTool('org-a', spec, 'hang', {}, { timeoutMs: 60_000 }));
      await waitFor(() => manager.listInstances()[0]?.inFlight === 1, 'in flight');
      const queued = rejection(manager.callTool('org-b', spec, 'echo', {}));
      await waitFor(() => manager.queueDepth() === 1, 'queued');
      // 3 intervals + the call deadline + the queue deadline
      expect(timers.pending()).toBe(5);

      const closing = manager.close();
      expect(manager.close()).toBe(closing);
      expect(((await queued) as HayError).code).toBe('SHUTTING_DOWN');
      const refused = await rejection(manager.callTool('org-c', spec, 'echo', {}));
      expect((refused as HayError).code).toBe('SHUTTING_DOWN');
      await closing;
      expect(((await busy) as HayError).code).toBe('SHUTTING_DOWN');
      expect(factory.connections.every((c) => c.closed)).toBe(true);
      expect(manager.listInstances().map((i) => `${i.orgId}:${i.state}`)).toEqual([
        'org-a:stopped',
        'org-b:stopped',
      ]);
      expect(manager.queueDepth()).toBe(0);
      expect(timers.pending()).toBe(0);
      manager.start();
      await manager.close();
      expect(timers.pending()).toBe(0);
    } finally {
      timers.restore();
    }
  });

  it('lets in-flight calls finish within the drain time', async () => {
    const { manager, factory } = setup({ shutdownDrainMs: 5_000 });
    const call = manager.callTool('org-a', makeSpec(), 'wait', {});
    await waitFor(() => manager.listInstances()[0]?.inFlight === 1, 'in flight');
    const closing = manager.close();
    await waitFor(() => factory.last().calls === 1, 'call reached plugin');
    expect(factory.last().closed).toBe(false);
    factory.last().gate.resolve();
    expect(await call).toEqual(text('waited'));
    await closing;
    expect(factory.last().closed).toBe(true);
  });

  it('cancels a start in progress', async () => {
    const { manager, factory } = setup();
    const gate = deferred();
    factory.connectGate = gate.promise;
    const call = manager.callTool('org-a', makeSpec(), 'echo', {});
    await waitFor(() => factory.connectCalls === 1, 'connecting');
    const closing = manager.close();
    expect(((await rejection(call)) as HayError).code).toBe('SHUTTING_DOWN');
    gate.resolve();
    await closing;
    expect(factory.open()).toEqual([]);
  });
});

describe('InstanceManager shared instances (manifest runtime.shared, core plugins)', () => {
  const sharedSpec = (overrides: Partial<PluginSpec> = {}) => {
    const base = makeSpec(overrides);
    return { ...base, manifest: { ...base.manifest, runtime: { shared: true } } };
  };
  const callMeta: CallMetaProvider = {
    callMetaFor: async (orgId) => ({ 'hay/orgId': orgId, 'hay/config': { team: `${orgId}-team` } }),
  };

  it('one process serves every organization; each call carries its own organization and configuration', async () => {
    const { manager, factory, activity } = setup({ activityFlushIntervalMs: 60_000 }, { callMeta });
    const spec = sharedSpec();
    const orgs = ['org-a', 'org-b', 'org-c'];
    const results = await Promise.all(orgs.map((o) => manager.callTool(o, spec, 'echo', { text: o })));
    expect(results).toEqual(orgs.map((o) => text(o)));
    expect(factory.connectCalls).toBe(1);
    const conn = factory.last();
    expect(conn.orgId).toBe('_shared');
    expect(conn.metas).toEqual(orgs.map((o) => ({ 'hay/orgId': o, 'hay/config': { team: `${o}-team` } })));
    // listed for the organizations that used it, as theirs; not for others
    expect(manager.listInstances({ orgId: 'org-b' })).toMatchObject([
      { orgId: 'org-b', shared: true, state: 'running', pid: conn.pid },
    ]);
    expect(manager.listInstances({ orgId: 'org-z' })).toEqual([]);
    await manager.close();
    const touched = new Set(activity.batches.flat().map((e) => e.orgId));
    expect(touched).toEqual(new Set(orgs));
  });

  it("stopping one organization's instances leaves the shared process serving the others", async () => {
    const { manager, factory } = setup({}, { callMeta });
    const spec = sharedSpec();
    await manager.callTool('org-a', spec, 'echo', { text: 'a' });
    await manager.stopAllForOrganization('org-a');
    await manager.stopInstance('org-a', spec.pluginKey, 'disabled');
    expect(await manager.callTool('org-b', spec, 'echo', { text: 'b' })).toEqual(text('b'));
    expect(factory.connectCalls).toBe(1);
    expect(factory.last().closed).toBe(false);
  });

  it('a custom plugin cannot opt in: runtime.shared is ignored and every organization gets its own process', async () => {
    const { manager, factory } = setup({}, { callMeta });
    const spec = sharedSpec({ sourceType: 'custom', organizationId: 'org-a' });
    await manager.callTool('org-a', spec, 'echo', { text: 'a' });
    await manager.callTool('org-b', spec, 'echo', { text: 'b' });
    expect(factory.connections.map((c) => c.orgId)).toEqual(['org-a', 'org-b']);
    expect(factory.connections.flatMap((c) => c.metas)).toEqual([undefined, undefined]);
  });
});
