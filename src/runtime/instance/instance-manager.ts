import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { DEFAULTS } from '../../config.js';
import {
  EgressError,
  HayError,
  InstanceError,
  PreconditionError,
  TimeoutError,
  isHayError,
} from '../../errors.js';
import type { Logger } from '../../logger.js';
import {
  isSharedSpec,
  SHARED_INSTANCE_ORG,
  type CallMetaProvider,
  type CallOptions,
  type CallToolResult,
  type CompleteResult,
  type CompletionRequest,
  type ConnectionEnd,
  type ConnectionFactory,
  type PluginConnection,
  type PluginPreparer,
  type PluginSpec,
  type GetPromptResult,
  type ReadResourceResult,
  type ServerExtras,
  type Tool,
} from '../ports.js';
import { ActivityBuffer } from './activity.js';
import { raceSignal, sleep, withDeadline } from './deadline.js';
import { describeEnd, errorText } from './describe.js';
import { SlotPool } from './pool.js';
import {
  instanceKey,
  type Announcement,
  type InstanceRecord,
  type LiveConnection,
  type StartOperation,
} from './record.js';
import { backoffDelay, canTransition, holdsSlot, type InstanceState } from './state.js';
import type {
  InstanceInfo,
  InstanceManagerDeps,
  InstanceManagerEvents,
  InstanceManagerOptions,
  UsageSummary,
} from './types.js';

/** Rounds of "wait for the instance to settle" one caller goes through before giving up. */
const MAX_ROUNDS = 8;
/** Extra time given to the connection's own timeout so the manager's deadline fires first. */
const INNER_TIMEOUT_MARGIN_MS = 1_000;

type Listener<E extends keyof InstanceManagerEvents> = (event: InstanceManagerEvents[E]) => void;

/**
 * Runs plugin instances per (organization, plugin key): starts them on demand, shares one start among
 * concurrent callers, bounds instances per plugin (FIFO queue, LRU eviction of idle ones), stops idle
 * instances, pings, replaces crashed or wedged ones with exponential backoff, and drains before restarts.
 * Instances are only started by calls; nothing is started by start().
 */
export class InstanceManager {
  private readonly logger: Logger;
  private readonly connections: ConnectionFactory;
  private readonly preparer: PluginPreparer;
  private readonly callMeta: CallMetaProvider | undefined;
  private readonly opts: Required<InstanceManagerOptions>;
  private readonly now: () => number;
  private readonly records = new Map<string, InstanceRecord>();
  private readonly pool: SlotPool;
  private readonly activity: ActivityBuffer;
  private readonly listeners: { [E in keyof InstanceManagerEvents]: Set<Listener<E>> } = {
    state: new Set(),
    toolsChanged: new Set(),
    extrasChanged: new Set(),
    resourceUpdated: new Set(),
  };
  private readonly pendingCloses = new Set<Promise<void>>();
  /** Aborted by close(): ends waits (restart backoff) that hold no other handle. */
  private readonly closeController = new AbortController();
  private sweepTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closing: Promise<void> | undefined;

  constructor(deps: InstanceManagerDeps) {
    this.logger = deps.logger;
    this.connections = deps.connections;
    this.preparer = deps.preparer;
    this.callMeta = deps.callMeta;
    this.now = deps.now ?? Date.now;
    const o = deps.options;
    this.opts = {
      ...o,
      shutdownDrainMs: o.shutdownDrainMs ?? DEFAULTS.shutdownDrainMs,
      pingTimeoutMs: o.pingTimeoutMs ?? Math.min(o.callTimeoutMs, 10_000),
      crashReportGraceMs: o.crashReportGraceMs ?? 500,
      listChangedWindowMs: o.listChangedWindowMs ?? 250,
    };
    this.pool = new SlotPool(this.now);
    this.activity = new ActivityBuffer(deps.activity, this.logger, o.activityFlushIntervalMs);
  }

  /** Starts the idle sweep, health pings and activity flushes (unref'd timers). Idempotent; no-op after close. */
  start(): void {
    if (this.started || this.closing) return;
    this.started = true;
    this.sweepTimer = setInterval(() => void this.cleanupInactiveInstances(), this.opts.idleSweepIntervalMs);
    this.sweepTimer.unref();
    this.healthTimer = setInterval(() => this.healthTick(), this.opts.healthIntervalMs);
    this.healthTimer.unref();
    this.activity.start();
  }

  /**
   * Stops intake (new calls fail with SHUTTING_DOWN), rejects queued waiters, cancels starts, waits up to
   * shutdownDrainMs for in-flight calls, stops every instance, flushes activity and clears all timers.
   * Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Subscribes to an event; returns the unsubscribe function. Listener errors are logged, not thrown. */
  on<E extends keyof InstanceManagerEvents>(event: E, listener: Listener<E>): () => void {
    this.listeners[event].add(listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof InstanceManagerEvents>(event: E, listener: Listener<E>): void {
    this.listeners[event].delete(listener);
  }

  /**
   * Resolves when (orgId, spec.pluginKey) has a running instance of spec.checksum. Concurrent callers share
   * one preparation, pool slot and connect. While a failed instance backs off: with `timeoutMs`, a backoff
   * ending within it is waited out; otherwise throws PreconditionError INSTANCE_FAILED (details.retryAfterMs).
   * Throws CapacityError when no slot frees within queueTimeoutMs, InstanceError on start failure or
   * shutdown, or the signal's reason when aborted.
   */
  async ensureInstanceRunning(
    orgId: string,
    spec: PluginSpec,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<void> {
    this.assertOpen();
    const rec = this.recordFor(orgId, spec);
    rec.users++;
    try {
      const budget = {
        deadline: options.timeoutMs === undefined ? undefined : this.now() + options.timeoutMs,
        waitedMs: 0,
      };
      await this.ensureRunning(rec, spec, options.signal, budget);
    } finally {
      this.leave(rec);
    }
  }

  /**
   * Calls a tool on the pair's instance, starting it if needed. The call gets options.timeoutMs (default
   * callTimeoutMs); on timeout the instance is considered wedged, stopped and replaced on the next call
   * (TimeoutError). A call arriving while a crashed instance backs off waits for the restart when the
   * backoff ends within its timeout (the wait is taken from the timeout), else fails at once with
   * PreconditionError INSTANCE_FAILED (details.retryAfterMs). A connection ending mid-call fails with
   * InstanceError INSTANCE_CRASHED naming the exit code, signal or limit. An `isError` result resolves.
   * With `beforeCall`, the tool list (cached) is read and handed to it within the same use
   * of the instance as the call, so the instance cannot be evicted or restarted between the two.
   * `beforeCall` may throw to refuse the call (the error reaches the caller unchanged, at once) or return
   * a result to answer without calling the plugin (e.g. a cache hit).
   */
  async callTool(
    orgId: string,
    spec: PluginSpec,
    toolName: string,
    args: Record<string, unknown>,
    options?: CallOptions,
    beforeCall?: (tools: readonly Tool[]) => CallToolResult | undefined,
  ): Promise<CallToolResult> {
    let refused: { err: unknown } | undefined;
    const result = await this.useInstance(
      orgId,
      spec,
      `tools/call "${toolName}"`,
      options,
      async (live, callOptions) => {
        if (beforeCall) {
          const tools = await this.loadTools(live, callOptions);
          try {
            const early = beforeCall(tools);
            if (early) return early;
          } catch (err) {
            refused = { err };
            return undefined;
          }
        }
        const opts: CallOptions = {
          ...callOptions,
          ...(options?.onProgress ? { onProgress: options.onProgress } : {}),
          ...(options?.onServerRequest ? { onServerRequest: options.onServerRequest } : {}),
          ...(options?.onLog ? { onLog: options.onLog } : {}),
        };
        if (!isSharedSpec(live.spec)) return live.conn.callTool(toolName, args, opts);
        const meta = (await this.callMeta?.callMetaFor(orgId, live.spec)) ?? { 'hay/orgId': orgId };
        return live.conn.callTool(toolName, args, { ...opts, meta });
      },
    );
    if (refused) throw refused.err;
    return result as CallToolResult;
  }

  /** Tools of the pair's instance; cached per running connection until it announces tools/list_changed. */
  listTools(orgId: string, spec: PluginSpec, options?: CallOptions): Promise<Tool[]> {
    return this.useInstance(orgId, spec, 'tools/list', options, (live, callOptions) =>
      this.loadTools(live, callOptions),
    );
  }

  /** Resources, resource templates and prompts of the pair's instance (empty where the server has none). */
  listExtras(orgId: string, spec: PluginSpec, options?: CallOptions): Promise<ServerExtras> {
    return this.useInstance(orgId, spec, 'resources/list', options, (live, callOptions) =>
      live.conn.listExtras
        ? live.conn.listExtras(callOptions)
        : Promise.resolve({ resources: [], resourceTemplates: [], prompts: [] }),
    );
  }

  /** resources/read on the pair's instance (a shared instance gets the organization in `_meta`). */
  readResource(
    orgId: string,
    spec: PluginSpec,
    uri: string,
    options?: CallOptions,
  ): Promise<ReadResourceResult> {
    return this.useInstance(orgId, spec, 'resources/read', options, async (live, callOptions) => {
      if (!live.conn.readResource)
        throw new InstanceError('INSTANCE_FAILED', `Plugin ${spec.pluginId} does not serve resources`);
      return live.conn.readResource(uri, await this.withMeta(orgId, live.spec, callOptions));
    });
  }

  /** prompts/get on the pair's instance (a shared instance gets the organization in `_meta`). */
  getPrompt(
    orgId: string,
    spec: PluginSpec,
    name: string,
    args: Record<string, string>,
    options?: CallOptions,
  ): Promise<GetPromptResult> {
    return this.useInstance(orgId, spec, `prompts/get "${name}"`, options, async (live, callOptions) => {
      if (!live.conn.getPrompt)
        throw new InstanceError('INSTANCE_FAILED', `Plugin ${spec.pluginId} does not serve prompts`);
      return live.conn.getPrompt(name, args, await this.withMeta(orgId, live.spec, callOptions));
    });
  }

  /** completion/complete on the pair's instance (a shared instance gets the organization in `_meta`). */
  complete(
    orgId: string,
    spec: PluginSpec,
    request: CompletionRequest,
    options?: CallOptions,
  ): Promise<CompleteResult> {
    return this.useInstance(orgId, spec, 'completion/complete', options, async (live, callOptions) => {
      if (!live.conn.complete) return { completion: { values: [] } };
      return live.conn.complete(request, await this.withMeta(orgId, live.spec, callOptions));
    });
  }

  /**
   * resources/subscribe or resources/unsubscribe on the organization's instance (started if needed). A
   * subscription is held by that connection (see LiveConnection.subscriptions) until unsubscribed or the
   * connection ends. Resolves with whether the instance is shared (one process for every organization).
   */
  subscribeResource(
    orgId: string,
    spec: PluginSpec,
    uri: string,
    subscribe: boolean,
    options?: CallOptions,
  ): Promise<{ shared: boolean }> {
    const method = subscribe ? 'resources/subscribe' : 'resources/unsubscribe';
    return this.useInstance(orgId, spec, method, options, async (live, callOptions) => {
      const conn = live.conn;
      if (!conn.subscribeResource || !conn.unsubscribeResource)
        throw new InstanceError(
          'INSTANCE_FAILED',
          `Plugin ${spec.pluginId} does not offer resource subscriptions`,
        );
      const meta = await this.withMeta(orgId, live.spec, callOptions);
      if (subscribe) {
        await conn.subscribeResource(uri, meta);
        live.subscriptions.add(uri);
      } else {
        live.subscriptions.delete(uri);
        await conn.unsubscribeResource(uri, meta);
      }
      return { shared: isSharedSpec(live.spec) };
    });
  }

  private async withMeta(orgId: string, spec: PluginSpec, options: CallOptions): Promise<CallOptions> {
    if (!isSharedSpec(spec)) return options;
    const meta = (await this.callMeta?.callMetaFor(orgId, spec)) ?? { 'hay/orgId': orgId };
    return { ...options, meta };
  }

  /** The connection's tools: cached until tools/list_changed; concurrent loads share one request. */
  private async loadTools(live: LiveConnection, callOptions: CallOptions): Promise<Tool[]> {
    if (live.tools) return [...live.tools];
    if (!live.toolsLoad) {
      const version = live.toolsVersion;
      const timeoutMs = callOptions.timeoutMs ?? this.opts.callTimeoutMs;
      live.toolsLoad = live.conn
        .listTools({ signal: live.abort.signal, timeoutMs })
        .then((tools) => {
          if (live.toolsVersion === version && !live.gone) live.tools = tools;
          return tools;
        })
        .finally(() => {
          live.toolsLoad = undefined;
        });
    }
    return [...(await live.toolsLoad)];
  }

  /** Marks the pair active now, in memory; persisted by the next batch flush. */
  updateActivityTimestamp(orgId: string, pluginKey: string): void {
    const at = this.now();
    const rec =
      this.records.get(instanceKey(orgId, pluginKey)) ??
      this.records.get(instanceKey(SHARED_INSTANCE_ORG, pluginKey));
    if (rec) rec.lastActivityAt = at;
    this.activity.touch(orgId, pluginKey, at);
  }

  /**
   * One idle sweep now: stops running instances idle longer than their idle timeout (manifest
   * runtime.idleTimeoutMs, else idleTimeoutMs) that have no call in flight, no caller waiting and no resource
   * subscription held, and forgets settled records. Resolves when those instances are stopped.
   */
  async cleanupInactiveInstances(): Promise<void> {
    const now = this.now();
    const stops: Promise<void>[] = [];
    for (const rec of [...this.records.values()]) {
      if (this.busy(rec)) continue;
      const live = rec.live;
      if (rec.state.kind === 'running' && live) {
        if (live.subscriptions.size > 0) continue;
        const idleLimit = live.spec.manifest.runtime?.idleTimeoutMs ?? this.opts.idleTimeoutMs;
        const idleFor = now - (rec.lastActivityAt ?? live.startedAt);
        if (idleFor > idleLimit) {
          stops.push(
            this.stopRecord(
              rec,
              `idle for ${idleFor} ms (limit ${idleLimit} ms)`,
              this.stoppedError(rec, 'it was idle'),
            ),
          );
        }
      } else if (
        rec.state.kind === 'stopped' ||
        (rec.state.kind === 'failed' && now > rec.state.retryAfter + this.opts.crashBackoffMaxMs)
      ) {
        this.records.delete(rec.key);
      }
    }
    await Promise.all(stops);
  }

  /**
   * The last `maxLines` stderr lines (sanitized, see StderrTail) of the organization's own instance of the
   * plugin (its main lane, not a subject-canary lane): its running process, else the last one that ran. A
   * shared instance (one process for every organization) answers no lines and `shared: true`: its output is
   * not tied to one organization.
   */
  logLines(orgId: string, pluginKey: string, maxLines: number): { lines: string[]; shared: boolean } {
    const own = this.records.get(instanceKey(orgId, pluginKey));
    if (!own) {
      const shared = this.records.get(instanceKey(SHARED_INSTANCE_ORG, pluginKey));
      return { lines: [], shared: shared !== undefined };
    }
    const lines = own.live ? (own.live.conn.logLines?.() ?? []) : own.lastLogLines;
    return { lines: lines.slice(-maxLines), shared: false };
  }

  /**
   * Drains (in-flight calls finish, new calls wait) then stops the pair's instances (every lane); clears
   * their backoff.
   */
  async stopInstance(orgId: string, pluginKey: string, reason: string): Promise<void> {
    await Promise.all(
      [...this.records.values()]
        .filter((r) => r.orgId === orgId && r.pluginKey === pluginKey)
        .map((r) => this.drainAndStop(r, reason)),
    );
  }

  /** stopInstance for every plugin of one organization. */
  async stopAllForOrganization(orgId: string, reason = 'organization stopped'): Promise<void> {
    await Promise.all(
      [...this.records.values()].filter((r) => r.orgId === orgId).map((r) => this.drainAndStop(r, reason)),
    );
  }

  /** stopInstance for one plugin across all organizations. */
  async stopAllForPlugin(pluginKey: string, reason: string): Promise<void> {
    await Promise.all(
      [...this.records.values()]
        .filter((r) => r.pluginKey === pluginKey)
        .map((r) => this.drainAndStop(r, reason)),
    );
  }

  /**
   * For a new plugin version: running instances are drained then stopped (new calls wait, then start the
   * version their spec names); starts in progress are replaced after they finish; backoff is cleared.
   * Resolves when the running ones are stopped.
   */
  async restartPlugin(pluginKey: string, reason = 'plugin updated'): Promise<void> {
    const drains: Promise<void>[] = [];
    for (const rec of this.records.values()) {
      if (rec.pluginKey !== pluginKey) continue;
      if (rec.start) rec.start.restartRequested = true;
      if (rec.live) rec.live.stale = true;
      if (rec.state.kind === 'running' || rec.state.kind === 'failed')
        drains.push(this.drainAndStop(rec, reason));
    }
    await Promise.all(drains);
  }

  /**
   * Snapshots of known instances (copies). With an orgId filter, a shared instance is listed (as that org's,
   * `shared: true`) once the org has called it; without one, under the org SHARED_INSTANCE_ORG.
   */
  listInstances(filter: { orgId?: string } = {}): InstanceInfo[] {
    const out: InstanceInfo[] = [];
    for (const rec of this.records.values()) {
      if (filter.orgId !== undefined && rec.orgId !== filter.orgId && !rec.sharedBy?.has(filter.orgId))
        continue;
      const live = rec.live;
      const spec = live?.spec ?? rec.spec;
      out.push({
        orgId: filter.orgId ?? rec.orgId,
        shared: rec.sharedBy !== undefined,
        pluginKey: rec.pluginKey,
        pluginId: spec.pluginId,
        version: spec.version,
        checksum: spec.checksum,
        state: rec.state.kind,
        pid: live?.conn.pid ?? null,
        transport: live?.conn.transport ?? null,
        startedAt: live?.startedAt ?? null,
        lastActivityAt: rec.lastActivityAt ?? null,
        inFlight: rec.inFlight,
        failures: rec.failures,
        lastError: rec.lastError ?? null,
        retryAfter: rec.state.kind === 'failed' ? rec.state.retryAfter : null,
      });
    }
    return out;
  }

  /** Callers waiting for a free instance slot, for one plugin or in total. */
  queueDepth(pluginKey?: string): number {
    return this.pool.waiting(pluginKey);
  }

  /** Resource usage of running instances (those whose connection reports it) and totals. */
  async usage(): Promise<UsageSummary> {
    const rows = await Promise.all(
      [...this.records.values()].map(async (rec) => {
        const live = rec.live;
        if (!live?.conn.usage || rec.state.kind !== 'running') return undefined;
        const read = live.conn.usage.bind(live.conn);
        const u = await withDeadline(() => read(), {
          timeoutMs: this.opts.pingTimeoutMs,
          timeoutError: () => new TimeoutError('usage read timed out'),
        }).catch(() => undefined);
        if (!u) return undefined;
        return {
          orgId: rec.orgId,
          pluginKey: rec.pluginKey,
          pluginId: live.spec.pluginId,
          pid: live.conn.pid ?? null,
          rssBytes: u.rssBytes,
          cpuSeconds: u.cpuSeconds,
        };
      }),
    );
    const instances = rows.filter((r) => r !== undefined);
    return {
      instances,
      totalRssBytes: instances.reduce((n, r) => n + r.rssBytes, 0),
      totalCpuSeconds: instances.reduce((n, r) => n + r.cpuSeconds, 0),
    };
  }

  // ---- ensure / start ----------------------------------------------------------------------------------

  /**
   * `budget.deadline` (clock time) lets a caller wait out a restart backoff that ends before it; the time
   * waited is added to `budget.waitedMs`. Without a deadline a backoff fails the caller at once.
   */
  private async ensureRunning(
    rec: InstanceRecord,
    spec: PluginSpec,
    signal: AbortSignal | undefined,
    budget: { deadline: number | undefined; waitedMs: number },
  ) {
    /** The failed state whose backoff this caller already waited out (the clock may be a fake one). */
    let waitedOut: InstanceState | undefined;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      this.assertOpen();
      if (signal?.aborted) throw signal.reason;
      if (rec.drain) {
        await raceSignal(rec.drain, signal);
        continue;
      }
      if (rec.stopping) {
        await raceSignal(rec.stopping, signal);
        continue;
      }
      if (rec.start) {
        await this.joinStart(rec.start, signal);
        continue;
      }
      const state = rec.state;
      const live = rec.live;
      if (state.kind === 'running' && live) {
        if (live.stale || live.spec.checksum !== spec.checksum) {
          void this.drainAndStop(rec, `restarting for checksum ${spec.checksum.slice(0, 12)}`).catch(
            () => {},
          );
          continue;
        }
        if (await this.verifyBeforeReuse(rec, live, signal)) return;
        continue;
      }
      if (state.kind === 'failed' && state.retryAfter > this.now() && waitedOut !== state) {
        const now = this.now();
        const waitMs = state.retryAfter - now;
        if (budget.deadline === undefined || waitMs >= budget.deadline - now)
          throw this.backoffError(rec, state);
        rec.logger.debug({ waitMs }, 'call waits out the restart backoff');
        await sleep(waitMs, [signal, this.closeController.signal]);
        budget.waitedMs += waitMs;
        waitedOut = state;
        continue;
      }
      if (state.kind === 'stopped' || state.kind === 'failed') {
        rec.spec = spec;
        await this.joinStart(this.beginStart(rec, spec), signal);
        continue;
      }
      throw new HayError('INTERNAL', `instance of ${spec.pluginId} is ${state.kind} without an operation`);
    }
    throw new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${spec.pluginId} kept changing state (restarts or crashes) while org ${rec.orgId} waited for it. Retry the call.`,
    );
  }

  /** Waits for a shared start; when the last waiting caller aborts, the start itself is aborted. */
  private async joinStart(op: StartOperation, signal: AbortSignal | undefined): Promise<void> {
    op.joined++;
    try {
      await raceSignal(op.promise, signal);
    } finally {
      op.joined--;
      if (op.joined === 0 && signal?.aborted) op.controller.abort(signal.reason);
    }
  }

  private beginStart(rec: InstanceRecord, spec: PluginSpec): StartOperation {
    const controller = new AbortController();
    const op: StartOperation = { controller, joined: 0, restartRequested: false, promise: Promise.resolve() };
    op.promise = this.runStart(rec, spec, op).finally(() => {
      if (rec.start === op) rec.start = undefined;
    });
    op.promise.catch(() => {});
    rec.start = op;
    return op;
  }

  private async runStart(rec: InstanceRecord, spec: PluginSpec, op: StartOperation): Promise<void> {
    const signal = op.controller.signal;
    await raceSignal(this.preparer.ensureReady(spec), signal);
    const limit = spec.maxConcurrentInstances;
    if (!this.pool.tryAcquire(spec.pluginKey, rec.key, limit)) {
      const waiting = this.pool.acquire(spec.pluginKey, rec.key, limit, {
        pluginId: spec.pluginId,
        timeoutMs: this.opts.queueTimeoutMs,
        signal,
      });
      rec.logger.debug({ queueDepth: this.pool.waiting(spec.pluginKey) }, 'waiting for an instance slot');
      this.evictForWaiters(spec.pluginKey);
      await waiting;
    }
    if (signal.aborted) {
      this.pool.release(spec.pluginKey, rec.key);
      throw signal.reason;
    }
    this.transition(rec, { kind: 'starting', since: this.now() }, 'start requested');
    let conn: PluginConnection;
    try {
      conn = await withDeadline(
        (s) => this.connections.connect(rec.orgId, spec, { signal: s, timeoutMs: this.opts.startTimeoutMs }),
        {
          timeoutMs: this.opts.startTimeoutMs + INNER_TIMEOUT_MARGIN_MS,
          signal,
          timeoutError: () =>
            new TimeoutError(
              `Plugin ${spec.pluginId} did not finish starting within ${this.opts.startTimeoutMs} ms`,
            ),
          onLate: (late) => this.trackClose(late, rec.logger),
        },
      );
    } catch (err) {
      if (signal.aborted) {
        this.transition(rec, { kind: 'stopped' }, `start cancelled: ${errorText(signal.reason)}`);
        throw signal.reason;
      }
      if (isHayError(err) && err.code === 'AUTHORIZATION_REQUIRED') {
        this.transition(rec, { kind: 'stopped' }, 'waiting for OAuth authorization');
        throw err;
      }
      rec.failures++;
      const delay = backoffDelay(rec.failures, this.opts.crashBackoffBaseMs, this.opts.crashBackoffMaxMs);
      const reason = `failed to start: ${errorText(err)}`;
      rec.lastError = reason;
      this.transition(
        rec,
        { kind: 'failed', reason, failures: rec.failures, retryAfter: this.now() + delay },
        reason,
      );
      // an egress refusal keeps its code: the caller must see EGRESS_DENIED, not a generic start failure
      if (err instanceof EgressError) throw err;
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${spec.pluginId} could not start for organization ${rec.orgId}: ${errorText(err)}. ` +
          (delay > 0 ? `The next start is allowed in ${delay} ms.` : 'The next call retries the start.'),
        err,
        { retryAfterMs: delay, failures: rec.failures },
      );
    }
    if (signal.aborted) {
      this.transition(rec, { kind: 'stopped' }, `start cancelled: ${errorText(signal.reason)}`);
      this.trackClose(conn, rec.logger);
      throw signal.reason;
    }
    const now = this.now();
    const live: LiveConnection = {
      conn,
      spec,
      startedAt: now,
      abort: new AbortController(),
      gone: undefined,
      goneListeners: new Set(),
      lastVerifiedAt: now,
      pinging: undefined,
      stale: op.restartRequested,
      tools: undefined,
      toolsLoad: undefined,
      toolsVersion: 0,
      subscriptions: new Set(),
      announcements: {
        tools: { until: 0, trailing: undefined },
        extras: { until: 0, trailing: undefined },
      },
    };
    rec.live = live;
    rec.lastActivityAt = now;
    conn.onEnd((end) => this.onConnectionEnd(rec, live, end));
    conn.onToolsChanged(() => {
      if (rec.live !== live) return;
      live.tools = undefined;
      live.toolsVersion++;
      this.announce(rec, live, live.announcements.tools, () =>
        this.emit('toolsChanged', { orgId: rec.orgId, pluginKey: rec.pluginKey }),
      );
    });
    conn.onExtrasChanged?.(() => {
      if (rec.live !== live) return;
      this.announce(rec, live, live.announcements.extras, () =>
        this.emit('extrasChanged', { orgId: rec.orgId, pluginKey: rec.pluginKey }),
      );
    });
    conn.onResourceUpdated?.((uri, forOrgId) => {
      if (rec.live !== live) return;
      // only a shared instance may address an organization; an organization's own instance speaks for it
      const shared = rec.orgId === SHARED_INSTANCE_ORG && forOrgId !== undefined;
      this.emit('resourceUpdated', {
        orgId: rec.orgId,
        pluginKey: rec.pluginKey,
        uri,
        ...(shared ? { forOrgId } : {}),
      });
    });
    this.transition(
      rec,
      { kind: 'running', since: now },
      conn.pid !== undefined ? `started pid ${conn.pid}` : 'connected',
    );
  }

  /** True when the instance may serve: recently used/verified, or it answered a ping now. */
  private async verifyBeforeReuse(
    rec: InstanceRecord,
    live: LiveConnection,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const lastSeen = Math.max(live.lastVerifiedAt, rec.lastActivityAt ?? 0);
    if (rec.inFlight > 0 || this.now() - lastSeen <= this.opts.pingBeforeReuseAfterMs) return true;
    return raceSignal(this.pingLive(rec, live), signal);
  }

  /**
   * Pings the connection (shared while one is running). On failure the instance is stopped and marked
   * failed without backoff, so the next caller starts a fresh one. Resolves true when it answered.
   */
  private pingLive(rec: InstanceRecord, live: LiveConnection): Promise<boolean> {
    if (live.pinging) return live.pinging;
    const timeoutMs = this.opts.pingTimeoutMs;
    const pinging = withDeadline((signal) => live.conn.ping({ signal, timeoutMs }), {
      timeoutMs,
      signal: live.abort.signal,
      timeoutError: () => new TimeoutError(`no answer within ${timeoutMs} ms`),
    })
      .then(() => {
        live.lastVerifiedAt = this.now();
        return true;
      })
      .catch((err: unknown) => {
        if (rec.live !== live || rec.state.kind !== 'running') return false;
        const reason = `did not answer a health ping (${errorText(err)})`;
        this.failLive(rec, live, {
          reason,
          countFailure: false,
          callError: new InstanceError(
            'INSTANCE_FAILED',
            `Plugin ${live.spec.pluginId} stopped answering (${reason}); its instance was replaced. Retry the call.`,
          ),
        });
        return false;
      })
      .finally(() => {
        live.pinging = undefined;
      });
    live.pinging = pinging;
    return pinging;
  }

  private backoffError(
    rec: InstanceRecord,
    state: Extract<InstanceState, { kind: 'failed' }>,
  ): PreconditionError {
    const retryAfterMs = Math.max(0, state.retryAfter - this.now());
    return new PreconditionError(
      'INSTANCE_FAILED',
      `Plugin ${rec.spec.pluginId} is unavailable for organization ${rec.orgId}: ${state.reason}. ` +
        `It failed ${state.failures} time(s) in a row; the next start is allowed in ${retryAfterMs} ms.`,
      {
        retryAfterMs,
        retryAt: new Date(state.retryAfter).toISOString(),
        failures: state.failures,
        reason: state.reason,
      },
    );
  }

  // ---- calls -------------------------------------------------------------------------------------------

  private async useInstance<T>(
    orgId: string,
    spec: PluginSpec,
    what: string,
    options: CallOptions | undefined,
    run: (live: LiveConnection, callOptions: CallOptions) => Promise<T>,
  ): Promise<T> {
    this.assertOpen();
    const rec = this.recordFor(orgId, spec);
    rec.users++;
    try {
      const timeoutMs = options?.timeoutMs ?? this.opts.callTimeoutMs;
      const budget = { deadline: this.now() + timeoutMs, waitedMs: 0 };
      for (let round = 0; round < MAX_ROUNDS; round++) {
        await this.ensureRunning(rec, spec, options?.signal, budget);
        const live = rec.live;
        if (
          rec.state.kind !== 'running' ||
          !live ||
          rec.drain ||
          live.stale ||
          live.spec.checksum !== spec.checksum
        )
          continue;
        rec.inFlight++;
        this.touch(rec, orgId);
        try {
          const callOptions =
            budget.waitedMs > 0
              ? { ...options, timeoutMs: Math.max(1, timeoutMs - budget.waitedMs) }
              : options;
          const result = await this.callWithDeadline(rec, live, what, callOptions, run);
          rec.failures = 0;
          return result;
        } finally {
          rec.inFlight--;
          this.touch(rec, orgId);
          if (rec.inFlight === 0) this.onCallsDrained(rec);
        }
      }
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${spec.pluginId} kept changing state (restarts or crashes) while org ${orgId} waited for it. Retry the call.`,
      );
    } finally {
      this.leave(rec);
    }
  }

  /**
   * Settles with the first of: the result; the deadline (TimeoutError, instance treated as wedged and
   * stopped); the caller's abort (its reason); the connection going away (crash/stop error).
   */
  private callWithDeadline<T>(
    rec: InstanceRecord,
    live: LiveConnection,
    what: string,
    options: CallOptions | undefined,
    run: (live: LiveConnection, callOptions: CallOptions) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = options?.timeoutMs ?? this.opts.callTimeoutMs;
    const callerSignal = options?.signal;
    if (callerSignal?.aborted) return Promise.reject(callerSignal.reason);
    if (live.gone) return Promise.reject(live.gone);
    // the connection's signal: the request's own (see CallOptions.signalPerRequest) or one per call
    const controller = options?.signalPerRequest && callerSignal ? undefined : new AbortController();
    const signal = controller?.signal ?? (callerSignal as AbortSignal);
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const settle = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onAbort);
        live.goneListeners.delete(onGone);
        fn();
      };
      const onGone = (err: HayError) => settle(() => reject(err));
      const onAbort = () => {
        settle(() => reject(callerSignal?.reason));
        controller?.abort(callerSignal?.reason);
      };
      const timer = setTimeout(() => {
        const err = new TimeoutError(
          `Plugin ${live.spec.pluginId} did not finish ${what} within ${timeoutMs} ms; its instance was stopped ` +
            `and will be replaced on the next call.`,
        );
        settle(() => reject(err));
        controller?.abort(err);
        this.onWedged(rec, live, what, timeoutMs);
      }, timeoutMs);
      timer.unref();
      callerSignal?.addEventListener('abort', onAbort, { once: true });
      live.goneListeners.add(onGone);
      let pending: Promise<T>;
      try {
        // aborted by the timer above, or the request's own: the connection adds no deadline of its own
        pending = run(live, {
          signal,
          timeoutMs: timeoutMs + INNER_TIMEOUT_MARGIN_MS,
          deadlineOwned: true,
        });
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (value) => settle(() => resolve(value)),
        (err: unknown) => {
          if (done) return;
          void this.explainFailure(live, err, what).then((explained) => settle(() => reject(explained)));
        },
      );
    });
  }

  /**
   * Maps a failed request to the error the caller sees. Protocol errors from the plugin pass through
   * wrapped; anything else may be the connection dying, so the end report (exit code, signal, limit) is
   * awaited for up to crashReportGraceMs.
   */
  private async explainFailure(live: LiveConnection, err: unknown, what: string): Promise<HayError> {
    const protocolError = err instanceof McpError && err.code !== Number(ErrorCode.ConnectionClosed);
    if (!protocolError && !live.gone) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.opts.crashReportGraceMs);
        timer.unref();
        function done() {
          clearTimeout(timer);
          live.goneListeners.delete(done);
          resolve();
        }
        live.goneListeners.add(done);
      });
    }
    if (live.gone) return live.gone;
    if (isHayError(err)) return err;
    return new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${live.spec.pluginId} failed ${what}: ${errorText(err)}`,
      err,
    );
  }

  private onWedged(rec: InstanceRecord, live: LiveConnection, what: string, timeoutMs: number): void {
    if (rec.live !== live || rec.state.kind !== 'running') return;
    void this.stopRecord(
      rec,
      `${what} did not finish within ${timeoutMs} ms (wedged)`,
      new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${live.spec.pluginId} was restarted because another call (${what}) hung; retry the call.`,
      ),
    );
  }

  private onCallsDrained(rec: InstanceRecord): void {
    const waiters = rec.idleWaiters.splice(0);
    for (const w of waiters) w();
  }

  /** A caller is done with the pair; an instance that became idle may now be evicted for waiters. */
  private leave(rec: InstanceRecord): void {
    rec.users--;
    if (!this.busy(rec)) this.evictForWaiters(rec.pluginKey);
  }

  // ---- crash, stop, drain ------------------------------------------------------------------------------

  private onConnectionEnd(rec: InstanceRecord, live: LiveConnection, end: ConnectionEnd): void {
    if (rec.live !== live || rec.state.kind !== 'running') return;
    const reason = describeEnd(end);
    const failures = rec.failures + 1;
    const delay = backoffDelay(failures, this.opts.crashBackoffBaseMs, this.opts.crashBackoffMaxMs);
    this.failLive(rec, live, {
      reason: `crashed: ${reason}`,
      countFailure: true,
      callError:
        end.kind === 'error' && end.error
          ? end.error
          : new InstanceError(
              'INSTANCE_CRASHED',
              `Plugin ${live.spec.pluginId} crashed for organization ${rec.orgId} (${reason}). ` +
                (delay > 0
                  ? `It can be restarted in ${delay} ms.`
                  : 'It will be restarted on the next call.'),
              undefined,
              { retryAfterMs: delay, failures, exitCode: end.kind === 'exited' ? end.code : null },
            ),
    });
  }

  /** Detaches a live connection and marks the instance failed; `countFailure` applies backoff. */
  private failLive(
    rec: InstanceRecord,
    live: LiveConnection,
    f: { reason: string; countFailure: boolean; callError: HayError },
  ): void {
    if (f.countFailure) rec.failures++;
    const delay = f.countFailure
      ? backoffDelay(rec.failures, this.opts.crashBackoffBaseMs, this.opts.crashBackoffMaxMs)
      : 0;
    rec.lastError = f.reason;
    this.detach(rec, live, f.callError);
    this.transition(
      rec,
      { kind: 'failed', reason: f.reason, failures: rec.failures, retryAfter: this.now() + delay },
      f.reason,
    );
    this.trackClose(live.conn, rec.logger);
  }

  /**
   * Emits a plugin's list_changed announcement now, or, within the window after the last one, once at the
   * window's end however many arrive (a plugin cannot make the host re-list it faster than that).
   */
  private announce(rec: InstanceRecord, live: LiveConnection, a: Announcement, emit: () => void): void {
    const now = Date.now();
    const windowMs = this.opts.listChangedWindowMs;
    if (now >= a.until && a.trailing === undefined) {
      a.until = now + windowMs;
      emit();
      return;
    }
    if (a.trailing !== undefined) return;
    a.trailing = setTimeout(
      () => {
        a.trailing = undefined;
        if (rec.live !== live) return;
        a.until = Date.now() + windowMs;
        emit();
      },
      Math.max(0, a.until - now),
    );
    a.trailing.unref();
  }

  private detach(rec: InstanceRecord, live: LiveConnection, err: HayError): void {
    for (const a of [live.announcements.tools, live.announcements.extras]) {
      if (a.trailing) clearTimeout(a.trailing);
      a.trailing = undefined;
    }
    if (rec.live === live) rec.live = undefined;
    const lines = live.conn.logLines?.() ?? [];
    if (lines.length > 0) rec.lastLogLines = lines;
    live.gone = err;
    live.abort.abort(err);
    live.tools = undefined;
    const listeners = [...live.goneListeners];
    live.goneListeners.clear();
    for (const l of listeners) l(err);
  }

  /**
   * Stops now: aborts a start in progress, fails in-flight calls with `callError`, closes the connection.
   * A failed instance becomes stopped and its backoff is cleared. Shares one stop per instance.
   */
  private stopRecord(rec: InstanceRecord, reason: string, callError: HayError): Promise<void> {
    if (rec.stopping) return rec.stopping;
    const start = rec.start;
    if (start) {
      start.controller.abort(callError);
      return start.promise.then(
        () => this.stopRecord(rec, reason, callError),
        () => this.stopRecord(rec, reason, callError),
      );
    }
    if (rec.state.kind === 'failed') {
      rec.failures = 0;
      this.transition(rec, { kind: 'stopped' }, reason);
      return Promise.resolve();
    }
    const live = rec.live;
    if (rec.state.kind !== 'running' || !live) return Promise.resolve();
    this.detach(rec, live, callError);
    this.transition(rec, { kind: 'stopping', since: this.now(), reason }, reason);
    const stopping = this.closeConnection(live.conn, rec.logger).finally(() => {
      rec.stopping = undefined;
      this.transition(rec, { kind: 'stopped' }, reason);
    });
    rec.stopping = stopping;
    return stopping;
  }

  /** Waits for in-flight calls to finish (new callers wait on the drain), then stops. Shared per instance. */
  private drainAndStop(rec: InstanceRecord, reason: string): Promise<void> {
    if (rec.drain) return rec.drain;
    const drain = (async () => {
      try {
        if (rec.inFlight > 0) await new Promise<void>((resolve) => rec.idleWaiters.push(resolve));
        await this.stopRecord(rec, reason, this.stoppedError(rec, reason));
      } finally {
        rec.drain = undefined;
      }
    })();
    rec.drain = drain;
    return drain;
  }

  private stoppedError(rec: InstanceRecord, why: string): InstanceError {
    return new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${rec.spec.pluginId} instance for organization ${rec.orgId} was stopped (${why}); retry the call.`,
    );
  }

  /** Stops the least recently used idle instances of the plugin while callers wait for a slot. */
  private evictForWaiters(pluginKey: string): void {
    while (this.pool.waiting(pluginKey) > 0) {
      let victim: InstanceRecord | undefined;
      for (const rec of this.records.values()) {
        if (rec.pluginKey !== pluginKey || rec.state.kind !== 'running' || !rec.live) continue;
        if (this.busy(rec) || rec.live.pinging) continue;
        if (!victim || (rec.lastActivityAt ?? 0) < (victim.lastActivityAt ?? 0)) victim = rec;
      }
      if (!victim) return;
      const before = this.pool.waiting(pluginKey);
      void this.stopRecord(
        victim,
        'evicted (least recently used) to make room',
        this.stoppedError(victim, 'evicted'),
      );
      if (this.pool.waiting(pluginKey) >= before) return;
    }
  }

  private busy(rec: InstanceRecord): boolean {
    return (
      rec.inFlight > 0 ||
      rec.users > 0 ||
      rec.start !== undefined ||
      rec.drain !== undefined ||
      rec.stopping !== undefined
    );
  }

  private closeConnection(conn: PluginConnection, logger: Logger): Promise<void> {
    return conn.close().catch((err: unknown) => logger.warn({ err }, 'closing plugin connection failed'));
  }

  /** Closes a connection nobody waits for; close() awaits it. */
  private trackClose(conn: PluginConnection, logger: Logger): void {
    const p = this.closeConnection(conn, logger).finally(() => this.pendingCloses.delete(p));
    this.pendingCloses.add(p);
  }

  // ---- state ---------------------------------------------------------------------------------------------

  /** The only place state changes: validates the edge, frees the pool slot, logs, emits 'state'. */
  private transition(rec: InstanceRecord, next: InstanceState, reason: string): void {
    const from = rec.state.kind;
    if (!canTransition(from, next.kind)) {
      throw new HayError(
        'INTERNAL',
        `invalid instance transition ${from} -> ${next.kind} for ${rec.spec.pluginId}`,
      );
    }
    rec.state = next;
    if (holdsSlot(from) && !holdsSlot(next.kind)) this.pool.release(rec.pluginKey, rec.key);
    rec.logger.info({ from, to: next.kind, reason }, 'plugin instance state');
    this.emit('state', {
      orgId: rec.orgId,
      pluginKey: rec.pluginKey,
      pluginId: rec.live?.spec.pluginId ?? rec.spec.pluginId,
      from,
      to: next.kind,
      reason,
    });
  }

  private emit<E extends keyof InstanceManagerEvents>(event: E, payload: InstanceManagerEvents[E]): void {
    for (const listener of [...this.listeners[event]]) {
      try {
        listener(payload);
      } catch (err) {
        this.logger.error({ err, event }, 'instance manager listener threw');
      }
    }
  }

  /** The pair's record; every organization shares one record (and process) of a shared core plugin. */
  private recordFor(callerOrgId: string, spec: PluginSpec): InstanceRecord {
    const shared = isSharedSpec(spec);
    const orgId = shared ? SHARED_INSTANCE_ORG : callerOrgId;
    const key = instanceKey(orgId, spec.pluginKey, shared ? undefined : spec.lane);
    let rec = this.records.get(key);
    if (!rec) {
      rec = {
        key,
        orgId,
        sharedBy: shared ? new Set() : undefined,
        pluginKey: spec.pluginKey,
        spec,
        logger: this.logger.child({ orgId, pluginId: spec.pluginId, pluginKey: spec.pluginKey }),
        state: { kind: 'stopped' },
        live: undefined,
        start: undefined,
        drain: undefined,
        stopping: undefined,
        inFlight: 0,
        users: 0,
        idleWaiters: [],
        failures: 0,
        lastError: undefined,
        lastActivityAt: undefined,
        lastLogLines: [],
      };
      this.records.set(key, rec);
    }
    rec.sharedBy?.add(callerOrgId);
    return rec;
  }

  /** Marks the record active; the activity row is the calling organization's. */
  private touch(rec: InstanceRecord, callerOrgId: string): void {
    const at = this.now();
    rec.lastActivityAt = at;
    if (callerOrgId !== SHARED_INSTANCE_ORG) this.activity.touch(callerOrgId, rec.pluginKey, at);
  }

  private assertOpen(): void {
    if (this.closing) throw this.shutdownError();
  }

  private shutdownError(): InstanceError {
    return new InstanceError('SHUTTING_DOWN', 'The plugin host is shutting down; retry the call shortly.');
  }

  // ---- timers --------------------------------------------------------------------------------------------

  /** Pings idle running instances; a long healthy run clears the failure count. */
  private healthTick(): void {
    for (const rec of this.records.values()) {
      const live = rec.live;
      if (rec.state.kind !== 'running' || !live || this.busy(rec) || live.pinging) continue;
      void this.pingLive(rec, live).then((ok) => {
        if (ok && rec.live === live && this.now() - live.startedAt >= this.opts.crashBackoffMaxMs)
          rec.failures = 0;
      });
    }
  }

  private async shutdown(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.sweepTimer = undefined;
    this.healthTimer = undefined;
    const err = this.shutdownError();
    this.closeController.abort(err);
    this.pool.rejectAll(err);
    for (const rec of this.records.values()) rec.start?.controller.abort(err);

    const busy = [...this.records.values()].filter((r) => r.inFlight > 0);
    if (busy.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(busy.map((r) => new Promise<void>((resolve) => r.idleWaiters.push(resolve)))),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.opts.shutdownDrainMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    await Promise.all(
      [...this.records.values()].map((rec) => this.stopRecord(rec, 'host shutting down', err)),
    );
    await Promise.all([...this.pendingCloses]);
    await withDeadline(() => this.activity.close(), {
      timeoutMs: this.opts.shutdownDrainMs,
      timeoutError: () => new TimeoutError(`activity flush took longer than ${this.opts.shutdownDrainMs} ms`),
    }).catch((err: unknown) => this.logger.warn({ err }, 'final activity flush did not complete'));
    this.logger.debug('instance manager closed');
  }
}
