import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { parseCommandLine } from '../../manifest/command.js';
import type { PluginEgress } from '../../egress/plugin-egress.js';
import { EgressError, InstanceError, TimeoutError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ResourceLimits } from '../../manifest/types.js';
import type {
  ConnectionFactory,
  EnvProvider,
  LaunchSpec,
  PluginConnection,
  PluginSpec,
  RemoteEndpointProvider,
} from '../ports.js';
import type { ManagedProcess } from '../process/managed-process.js';
import type { ProcessManager } from '../process/process-manager.js';
import { ProcessStdioTransport } from '../process/stdio-transport.js';
import { abortReason } from './call-scope.js';
import { isUnsupportedProtocol, ModernPluginConnection } from './modern-connection.js';
import { McpPluginConnection, type ResponseLimits } from './plugin-connection.js';
import { createRemoteTransport, remoteTransportOrder } from './remote-transports.js';
import { dataDirRoot } from './roots.js';

export interface McpConnectionFactoryOptions {
  logger: Logger;
  processes: ProcessManager;
  env: EnvProvider;
  remote: RemoteEndpointProvider;
  /** Sandbox limits used where the manifest's runtime.limits sets none. */
  limits: Required<ResourceLimits>;
  /** Timeout of connection calls (listTools, callTool, ping) that pass no timeoutMs. */
  callTimeoutMs: number;
  /** Bytes a plugin process may leave unread on its stdin (ProcessStdioTransport); unset: its default. */
  maxStdinBacklogBytes?: number;
  /** The error for a remote server that refused for lack of OAuth authorization. */
  authorizationRequired?: (spec: PluginSpec) => Error;
  /** Caps on server answers (tools/list, results), passed to every connection; unset: unbounded. */
  responseLimits?: ResponseLimits;
  /** Wait after a local plugin's first roots/list answer before connect resolves. Default 200. */
  rootsSettleMs?: number;
  /** Egress policy for tenant traffic (src/egress). Unset: every connection is direct (tests, tools). */
  egress?: PluginEgress;
}

/**
 * Starts local plugins (stdio, via the ProcessManager) or connects to remote ones (Streamable HTTP, SSE,
 * WebSocket, alternatives tried in manifest order) and completes MCP initialize. `timeoutMs` bounds the
 * whole connect (environment, spawn, initialize, every fallback). On any failure nothing is left running.
 * A local plugin is offered one MCP root: its data folder as the process sees it (file:///data inside
 * bubblewrap, the host folder otherwise); connect resolves once a server that asks for roots at start has
 * been answered (see McpPluginConnection.settleRoots). Remote plugins are offered no roots.
 */
export class McpConnectionFactory implements ConnectionFactory {
  constructor(private readonly opts: McpConnectionFactoryOptions) {}

  private stdioTransport(proc: ManagedProcess): ProcessStdioTransport {
    const max = this.opts.maxStdinBacklogBytes;
    return new ProcessStdioTransport(proc, max !== undefined ? { maxBacklogBytes: max } : {});
  }

  async connect(
    orgId: string,
    spec: PluginSpec,
    options: { signal?: AbortSignal; timeoutMs: number },
  ): Promise<PluginConnection> {
    const deadline = Date.now() + options.timeoutMs;
    const mcp = spec.manifest.capabilities?.mcp;
    const type = mcp?.connection?.type ?? (mcp?.startCommand !== undefined ? 'local' : undefined);
    if (type === 'local') return this.connectLocal(orgId, spec, options.signal, deadline);
    if (type === 'remote') return this.connectRemote(orgId, spec, options.signal, deadline);
    throw new InstanceError(
      'INSTANCE_FAILED',
      `Plugin ${spec.pluginId} declares no MCP server: set capabilities.mcp.startCommand (local) or capabilities.mcp.connection.type "remote" with a url`,
    );
  }

  private async connectLocal(
    orgId: string,
    spec: PluginSpec,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<PluginConnection> {
    const { manifest } = spec;
    const startCommand = manifest.capabilities?.mcp?.startCommand;
    if (startCommand === undefined) {
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${spec.pluginId} is local but has no capabilities.mcp.startCommand`,
      );
    }
    const argv = parseCommandLine(startCommand, `${spec.pluginId} manifest: capabilities.mcp.startCommand`);
    const env = await this.opts.env.envFor(orgId, spec);
    const network = manifest.permissions?.network;
    const egress = await this.opts.egress?.local(orgId, spec);
    const launch: LaunchSpec = {
      orgId,
      pluginId: spec.pluginId,
      argv,
      cwd: spec.rootDir,
      env,
      limits: { ...this.opts.limits, ...definedOnly(manifest.runtime?.limits ?? {}) },
      network: egress?.network ?? {
        all: (network?.all ?? false) || (manifest.permissions?.api?.length ?? 0) > 0,
        hosts: network?.hosts ?? [],
      },
      readPaths: manifest.permissions?.filesystem?.read ?? [],
      trust: spec.sourceType === 'core' ? 'core' : 'tenant',
      ...(egress?.egress ? { egress: egress.egress } : {}),
    };
    let proc;
    try {
      checkTime(spec, signal, deadline);
      proc = await this.opts.processes.spawn(launch);
    } catch (err) {
      await egress?.close();
      throw err;
    }
    if (egress) void proc.exited.finally(() => egress.close());
    const connection = new McpPluginConnection({
      pluginId: spec.pluginId,
      transport: 'stdio',
      logger: this.opts.logger.child({ orgId, pluginId: spec.pluginId, pid: proc.pid }),
      callTimeoutMs: this.opts.callTimeoutMs,
      ...(this.opts.responseLimits ? { limits: this.opts.responseLimits } : {}),
      process: proc,
      ...(proc.dataDir !== undefined ? { roots: [dataDirRoot(proc.dataDir)] } : {}),
      ...(this.opts.rootsSettleMs !== undefined ? { rootsSettleMs: this.opts.rootsSettleMs } : {}),
    });
    try {
      await connection.open(this.stdioTransport(proc), { signal, timeoutMs: remaining(deadline) });
    } catch (err) {
      await connection.close();
      if (!isUnsupportedProtocol(err)) throw err;
      return this.connectModern(orgId, spec, launch, signal, deadline);
    }
    return connection;
  }

  /**
   * A local plugin that refused `initialize` (it speaks only MCP 2026-07-28): started again and spoken
   * to over `@modelcontextprotocol/client` 2.x (ModernPluginConnection), within the same deadline.
   */
  private async connectModern(
    orgId: string,
    spec: PluginSpec,
    launch: LaunchSpec,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<PluginConnection> {
    checkTime(spec, signal, deadline);
    const egress = launch.egress ? await this.opts.egress?.local(orgId, spec) : undefined;
    const proc = await this.opts.processes.spawn({
      ...launch,
      ...(egress?.network ? { network: egress.network } : {}),
      ...(egress?.egress ? { egress: egress.egress } : {}),
    });
    if (egress) void proc.exited.finally(() => egress.close());
    const connection = new ModernPluginConnection({
      pluginId: spec.pluginId,
      logger: this.opts.logger.child({ orgId, pluginId: spec.pluginId, pid: proc.pid, era: '2026-07-28' }),
      callTimeoutMs: this.opts.callTimeoutMs,
      process: proc,
      ...(this.opts.responseLimits ? { limits: this.opts.responseLimits } : {}),
    });
    try {
      await connection.open(this.stdioTransport(proc), { signal, timeoutMs: remaining(deadline) });
    } catch (err) {
      await connection.close();
      throw err;
    }
    return connection;
  }

  private authorizationRequired(spec: PluginSpec): Error {
    return (
      this.opts.authorizationRequired?.(spec) ??
      new InstanceError('INSTANCE_FAILED', `Plugin ${spec.pluginId} needs OAuth authorization`)
    );
  }

  private async connectRemote(
    orgId: string,
    spec: PluginSpec,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<PluginConnection> {
    const kinds = remoteTransportOrder(spec.manifest.capabilities?.mcp?.transport);
    if (kinds.length === 0) {
      throw new InstanceError(
        'INSTANCE_FAILED',
        `Plugin ${spec.pluginId} is remote but its transport names none of http, sse, websocket`,
      );
    }
    const endpoint = await this.opts.remote.endpointFor(orgId, spec);
    const egress = this.opts.egress?.remote(orgId, spec, {
      fromConfiguration: endpoint.fromConfiguration ?? false,
    });
    await egress?.preflight(endpoint.url);
    const failures: string[] = [];
    for (const kind of kinds) {
      checkTime(spec, signal, deadline);
      const logger = this.opts.logger.child({ orgId, pluginId: spec.pluginId, transport: kind });
      const guard = egress?.fetch();
      const connection = new McpPluginConnection({
        pluginId: spec.pluginId,
        transport: kind,
        logger,
        callTimeoutMs: this.opts.callTimeoutMs,
        ...(this.opts.responseLimits ? { limits: this.opts.responseLimits } : {}),
        ...(guard ? { onClose: () => guard.close() } : {}),
        ...(endpoint.authProvider ? { unauthorizedError: () => this.authorizationRequired(spec) } : {}),
      });
      guard?.onStreamCapped((err, ids) => connection.failRequests(err, ids));
      const timeoutMs = remaining(deadline);
      const attemptSignal = signal
        ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs);
      try {
        const transport = createRemoteTransport(
          kind,
          endpoint,
          attemptSignal,
          egress && guard ? { fetch: guard.fetch, webSocket: egress.webSocket } : undefined,
        );
        await connection.open(transport, { signal, timeoutMs });
        return connection;
      } catch (err) {
        await connection.close();
        if (err instanceof TimeoutError || signal?.aborted) throw err;
        if (err instanceof EgressError) throw err;
        if (guard?.lastError) throw guard.lastError;
        if (endpoint.authProvider && isUnauthorized(err)) throw this.authorizationRequired(spec);
        const reason = err instanceof Error ? err.message : String(err);
        logger.info({ reason }, 'remote transport failed; trying the next one if any');
        failures.push(`${kind}: ${reason}`);
      }
    }
    throw new InstanceError(
      'INSTANCE_FAILED',
      `Could not connect to plugin ${spec.pluginId} at ${redactUrl(endpoint.url)} (${failures.join('; ')})`,
    );
  }
}

function isUnauthorized(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof UnauthorizedError) return true;
  }
  return false;
}

function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

function checkTime(spec: PluginSpec, signal: AbortSignal | undefined, deadline: number): void {
  if (signal?.aborted) throw abortReason(signal);
  if (Date.now() >= deadline) throw new TimeoutError(`Plugin ${spec.pluginId} did not start in time`);
}

function definedOnly(limits: ResourceLimits): ResourceLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) as ResourceLimits;
}

/** The URL without credentials or query (which may carry secrets), for messages. */
function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return 'the configured URL';
  }
}
