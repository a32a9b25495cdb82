import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { isInitializeRequest, type AuthInfo, type Server } from '@modelcontextprotocol/server';
import type { Caller } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import { BoundedEventStore } from './event-store.js';
import { canTransition, type SessionState } from './session-state.js';

export interface LegacySessionLimits {
  /** Open sessions across all organizations. */
  maxSessions: number;
  maxSessionsPerOrg: number;
  /** A session without a request for this long is closed (the client re-initializes on 404). */
  idleMs: number;
  sweepIntervalMs: number;
  /** Messages kept per session for resuming a dropped SSE stream (0: no resumption). */
  maxResumeEvents: number;
  /** Approximate bytes of those messages kept per session (see BoundedEventStore). */
  maxResumeBytes: number;
}

interface Session {
  id: string | undefined;
  orgId: string;
  keyId: string;
  state: SessionState;
  lastSeenAt: number;
  transport: NodeStreamableHTTPServerTransport;
  server: Server;
}

/**
 * 2025-11-25 sessions of `/mcp`: one SDK Streamable HTTP transport + one gateway server per
 * Mcp-Session-Id (initialize, SSE GET stream, DELETE), bound to the organization and API key that opened
 * it: another key presenting the id gets 404, exactly as an unknown id. Bounded in count, closed when idle.
 * Each session keeps its last maxResumeEvents SSE messages, at most maxResumeBytes of them
 * (BoundedEventStore), so a client whose stream dropped resumes it with Last-Event-ID as the SDK
 * transport offers.
 */
export class LegacySessions {
  private readonly sessions = new Map<string, Session>();
  private readonly pending = new Set<Session>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly d: {
      buildServer: (caller: Caller) => Server;
      logger: Logger;
      limits: LegacySessionLimits;
      now?: () => number;
    },
  ) {}

  /** Starts the idle sweep (unref'd). Idempotent. */
  start(): void {
    if (this.sweepTimer || this.closing) return;
    this.sweepTimer = setInterval(() => void this.sweep(), this.d.limits.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  count(orgId?: string): number {
    let n = 0;
    for (const s of this.sessions.values()) if (orgId === undefined || s.orgId === orgId) n++;
    return n;
  }

  /** Organizations with at least one session. */
  orgIds(): string[] {
    return [...new Set([...this.sessions.values()].map((s) => s.orgId))];
  }

  /** Sends notifications/tools/list_changed on every open session of the organization. */
  toolsChanged(orgId: string): void {
    for (const s of this.sessions.values())
      if (s.orgId === orgId && s.state.kind === 'open')
        void s.server.sendToolListChanged().catch(() => undefined);
  }

  /** Sends notifications/resources/list_changed and prompts/list_changed on the organization's sessions. */
  extrasChanged(orgId: string): void {
    for (const s of this.sessions.values())
      if (s.orgId === orgId && s.state.kind === 'open') {
        void s.server.sendResourceListChanged().catch(() => undefined);
        void s.server.sendPromptListChanged().catch(() => undefined);
      }
  }

  async handle(
    caller: Caller,
    req: IncomingMessage & { auth?: AuthInfo },
    res: ServerResponse,
    body: unknown,
  ): Promise<void> {
    const header = req.headers['mcp-session-id'];
    const id = Array.isArray(header) ? header[0] : header;
    if (this.closing) return reject(res, 503, -32000, 'The host is shutting down');
    if (id !== undefined) {
      const s = this.sessions.get(id);
      if (!s || s.orgId !== caller.organizationId || s.keyId !== caller.keyId)
        return reject(res, 404, -32001, 'Session not found');
      s.lastSeenAt = this.now();
      await s.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body))
      return reject(
        res,
        400,
        -32000,
        'Bad Request: no Mcp-Session-Id header; send initialize first (2025-11-25) or use the 2026-07-28 per-request envelope',
      );
    const open = this.sessions.size + this.pending.size;
    if (
      open >= this.d.limits.maxSessions ||
      this.count(caller.organizationId) >= this.d.limits.maxSessionsPerOrg
    )
      return reject(res, 429, -32000, 'Too many open MCP sessions; close one (DELETE /mcp) or retry later');
    await this.open(caller, req, res, body);
  }

  /** Closes every session (their SSE streams end). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweepTimer);
      const all = [...this.sessions.values(), ...this.pending];
      await Promise.all(all.map((s) => this.end(s, 'host shutting down')));
    })();
    return this.closing;
  }

  private async open(
    caller: Caller,
    req: IncomingMessage & { auth?: AuthInfo },
    res: ServerResponse,
    body: unknown,
  ): Promise<void> {
    const now = this.now();
    const server = this.d.buildServer(caller);
    const session: Session = {
      id: undefined,
      orgId: caller.organizationId,
      keyId: caller.keyId,
      state: { kind: 'initializing', since: now },
      lastSeenAt: now,
      server,
      transport: new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        ...(this.d.limits.maxResumeEvents > 0
          ? {
              eventStore: new BoundedEventStore(this.d.limits.maxResumeEvents, this.d.limits.maxResumeBytes),
            }
          : {}),
        onsessioninitialized: (sid) => {
          session.id = sid;
          this.pending.delete(session);
          this.sessions.set(sid, session);
          this.transition(session, { kind: 'open', since: this.now() });
          this.d.logger.debug({ orgId: session.orgId, sessionId: sid }, 'MCP session opened');
        },
        onsessionclosed: () => void this.end(session, 'closed by the client'),
      }),
    };
    session.transport.onclose = () => void this.end(session, 'transport closed');
    this.pending.add(session);
    try {
      await server.connect(session.transport);
      await session.transport.handleRequest(req, res, body);
    } finally {
      if (session.state.kind === 'initializing') await this.end(session, 'initialize failed');
    }
  }

  private async end(s: Session, reason: string): Promise<void> {
    if (s.state.kind === 'closed') return;
    this.transition(s, { kind: 'closed', reason });
    this.pending.delete(s);
    if (s.id !== undefined) this.sessions.delete(s.id);
    this.d.logger.debug({ orgId: s.orgId, sessionId: s.id, reason }, 'MCP session closed');
    await s.server.close().catch(() => undefined);
    await s.transport.close().catch(() => undefined);
  }

  private async sweep(): Promise<void> {
    const cutoff = this.now() - this.d.limits.idleMs;
    for (const s of [...this.sessions.values()]) if (s.lastSeenAt < cutoff) await this.end(s, 'idle');
  }

  private transition(s: Session, next: SessionState): void {
    if (!canTransition(s.state.kind, next.kind))
      throw new Error(`MCP session ${s.id ?? '(new)'}: ${s.state.kind} -> ${next.kind} is not allowed`);
    s.state = next;
  }

  private now(): number {
    return (this.d.now ?? Date.now)();
  }
}

/**
 * The SDK's documented answer for requests no session transport can take (see the SDK guide "Sessions,
 * state, and scaling"): a JSON-RPC error object with id null and the HTTP status.
 */
function reject(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
