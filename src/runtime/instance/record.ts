import type { HayError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { PluginConnection, PluginSpec, Tool } from '../ports.js';
import type { InstanceState } from './state.js';

/** One connected session; replaced (never reused) after a crash, stop or restart. */
export interface LiveConnection {
  readonly conn: PluginConnection;
  /** The spec the connection was started with (its checksum and idle override apply). */
  readonly spec: PluginSpec;
  readonly startedAt: number;
  /** Aborted when the connection is detached; signal of internal requests (shared tools/list). */
  readonly abort: AbortController;
  /** Set once the connection is detached; calls still running reject with it. */
  gone: HayError | undefined;
  readonly goneListeners: Set<(err: HayError) => void>;
  /** Last successful ping or start. */
  lastVerifiedAt: number;
  pinging: Promise<boolean> | undefined;
  /** A restart was requested while this connection was starting or running: drain and replace it. */
  stale: boolean;
  tools: Tool[] | undefined;
  toolsLoad: Promise<Tool[]> | undefined;
  /** Bumped on tools/list_changed so a load that started earlier is not cached. */
  toolsVersion: number;
  /**
   * URIs of the resource subscriptions this connection holds: while any is held the idle sweep
   * leaves the instance running (an LRU eviction for waiting callers may still stop it).
   */
  readonly subscriptions: Set<string>;
  /** The rate bound of the plugin's list_changed announcements (InstanceManagerOptions.listChangedWindowMs). */
  readonly announcements: { tools: Announcement; extras: Announcement };
}

/** One kind of list_changed announcement of a connection: its window and a trailing event owed. */
export interface Announcement {
  /** Before this time (ms) a new announcement only marks the trailing event. */
  until: number;
  trailing: NodeJS.Timeout | undefined;
}

export interface StartOperation {
  promise: Promise<void>;
  readonly controller: AbortController;
  /** Callers currently awaiting the start; when the last one aborts, the start is aborted. */
  joined: number;
  /** restartPlugin() arrived during the start: the new connection is born stale. */
  restartRequested: boolean;
}

/** Internal bookkeeping for one (organization, plugin key) pair. Never handed out. */
export interface InstanceRecord {
  readonly key: string;
  /** SHARED_INSTANCE_ORG for a shared instance. */
  readonly orgId: string;
  /** Shared instance: the organizations that have used it (bounded by the number of organizations). */
  readonly sharedBy: Set<string> | undefined;
  readonly pluginKey: string;
  /** Latest spec a caller passed. */
  spec: PluginSpec;
  logger: Logger;
  state: InstanceState;
  live: LiveConnection | undefined;
  start: StartOperation | undefined;
  drain: Promise<void> | undefined;
  stopping: Promise<void> | undefined;
  /** Calls running on the connection. */
  inFlight: number;
  /** Callers inside ensure/call for this pair (waiting for a start, about to call, or calling). */
  users: number;
  /** Resolved when inFlight reaches zero. */
  idleWaiters: (() => void)[];
  failures: number;
  lastError: string | undefined;
  lastActivityAt: number | undefined;
  /** The log lines of the last connection, kept when it was detached (crash, stop, restart). */
  lastLogLines: string[];
}

export function instanceKey(orgId: string, pluginKey: string, lane?: string): string {
  return lane === undefined ? `${orgId}\u0000${pluginKey}` : `${orgId}\u0000${pluginKey}\u0000${lane}`;
}
