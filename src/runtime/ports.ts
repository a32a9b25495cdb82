import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  CallToolResult,
  CompleteResult,
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
  Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { HayError } from '../errors.js';
import type { HayPluginManifest, ResourceLimits } from '../manifest/types.js';

export type {
  CallToolResult,
  CompleteResult,
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
  Tool,
};

/**
 * `completion/complete` of a plugin, in the plugin's own names: a prompt name, or a resource template's
 * URI template as the plugin lists it.
 */
export interface CompletionRequest {
  ref: { type: 'ref/prompt'; name: string } | { type: 'ref/resource'; uri: string };
  argument: { name: string; value: string };
  context?: { arguments?: Record<string, string> };
}

/** What a plugin server offers besides tools: read at connect time from its capabilities, then listed. */
export interface ServerExtras {
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
}

/** A request a plugin server sends to its client during a call (2025-11-25 push style). */
export interface PluginServerRequest {
  method: 'sampling/createMessage' | 'elicitation/create' | 'roots/list';
  params: Record<string, unknown>;
}

/**
 * Answers a plugin's server-to-client request for the one call it belongs to (the /mcp gateway forwards
 * it to its client). Resolves with the result object, or rejects with an Error whose message the plugin
 * sees as a JSON-RPC error.
 */
export type ServerRequestRelay = (request: PluginServerRequest, signal: AbortSignal) => Promise<unknown>;

/** A plugin's `notifications/message` (MCP logging) during a call. */
export interface PluginLogMessage {
  level: string;
  data: unknown;
  logger?: string;
}

/**
 * Everything the runtime needs to know about one registered plugin version. `pluginKey` is the registry
 * row id: unique for a core plugin, or for (organization, custom plugin id).
 */
export interface PluginSpec {
  pluginKey: string;
  pluginId: string;
  version: string;
  checksum: string;
  /** Absolute path of the plugin folder. */
  rootDir: string;
  sourceType: 'core' | 'custom';
  /** Owner organization for custom plugins. */
  organizationId: string | null;
  manifest: HayPluginManifest;
  maxConcurrentInstances: number;
  /**
   * A second instance slot of the same (organization, plugin): set for the arm of a rollout over subjects,
   * so one organization runs both versions side by side, each in its own instance. Unset: the default slot.
   */
  lane?: string;
}

/** Values of an organization's configuration for one plugin, decrypted, after defaults. */
export type PluginConfigValues = Record<string, string | number | boolean>;

/** How the runtime launches a local plugin: no shell, argv already parsed. */
export interface LaunchSpec {
  orgId: string;
  pluginId: string;
  argv: readonly string[];
  cwd: string;
  /** Complete environment of the child: allow-list + plugin values. Nothing is inherited. */
  env: Record<string, string>;
  limits: Required<ResourceLimits>;
  /** From manifest permissions.network. */
  network: { all: boolean; hosts: readonly string[] };
  /** Extra read-only paths the plugin may see (manifest permissions.filesystem.read). */
  readPaths: readonly string[];
  /**
   * Who wrote the code: 'core' (operator-installed, trusted; runs with whatever layers the machine has) or
   * 'tenant' (custom/uploaded; runs only inside the full tenant sandbox, else refused). Unset: 'tenant'.
   */
  trust?: 'core' | 'tenant';
  /**
   * 'run' (default): the plugin folder is read-only. 'install': an install/build step; the plugin folder is
   * writable and HOME is a per-plugin scratch folder instead of the runtime data folder.
   */
  purpose?: 'run' | 'install';
  /**
   * Set when the plugin's network goes through the host's egress proxy (src/egress): the sandbox then gives
   * it a private network namespace and applies `namespace()`, or without one applies `hostNetwork()`.
   */
  egress?: LaunchEgress;
}

/** How a launch reaches the network through the host's egress proxy. */
export interface LaunchEgress {
  /**
   * For a private network namespace: host sockets to bind at sandbox paths, variables to add to the
   * plugin's environment `env`, and the argv that goes before the plugin's command (starts the forwarder).
   */
  namespace(env: Readonly<Record<string, string>>): {
    binds: readonly { host: string; sandbox: string }[];
    env: Record<string, string>;
    argvPrefix: readonly string[];
  };
  /** Without a namespace (host network): variables pointing the plugin at a loopback proxy port. */
  hostNetwork(env: Readonly<Record<string, string>>): Promise<Record<string, string>>;
}

/** Turns a launch spec into the actual command (e.g. wrapped by bubblewrap + cgroup). */
export interface SandboxWrapper {
  /** Layers in use and those unavailable, for boot logs. */
  describe(): { active: string[]; unavailable: { layer: string; reason: string }[] };
  /** Called once per spawn. `release` runs after the process exits (cgroup removal etc.); idempotent. */
  prepare(spec: LaunchSpec): Promise<PreparedLaunch>;
}

export interface PreparedLaunch {
  argv: readonly string[];
  cwd: string;
  env: Record<string, string>;
  /**
   * The plugin's data folder as the plugin process sees it (its HAY_PLUGIN_DATA_DIR), when `env` does not
   * carry the plugin's environment (bubblewrap sets it inside the sandbox). Unset: env.HAY_PLUGIN_DATA_DIR.
   */
  pluginDataDir?: string;
  /** Called with the child's pid right after spawn (e.g. to move it into a cgroup). */
  attach?(pid: number): Promise<void>;
  /** Reads why the process died if a limit killed it (e.g. 'memory', 'pids'), or undefined. */
  killedByLimit?(): Promise<string | undefined>;
  release(): Promise<void>;
}

/** Provides the child environment for (org, plugin): allow-list + HAY_* + mapped configuration. */
export interface EnvProvider {
  envFor(orgId: string, spec: PluginSpec): Promise<Record<string, string>>;
}

/** Remote connection details for (org, plugin): URL and headers from the manifest + org configuration. */
export interface RemoteEndpointProvider {
  endpointFor(orgId: string, spec: PluginSpec): Promise<RemoteEndpoint>;
}

/** Where and how to reach a remote plugin for one organization. */
export interface RemoteEndpoint {
  url: string;
  /** Sent on every request and handshake. */
  headers: Record<string, string>;
  /** Headers computed per HTTP request (e.g. a re-signed JWT); WebSocket uses their value at handshake. */
  perRequestHeaders?: () => Record<string, string>;
  /** OAuth 2.1 provider of this (org, plugin) for the SDK's HTTP transports. */
  authProvider?: OAuthClientProvider;
  /** True when the URL came from the organization's configuration (serverUrl), not the manifest. */
  fromConfiguration?: boolean;
}

/** Makes sure a plugin is installed and built before its first start. Concurrent calls share one run. */
export interface PluginPreparer {
  ensureReady(spec: PluginSpec): Promise<void>;
  /**
   * The folder checksum that the last successful install/build run of plugin `key` at source `checksum`
   * left behind, when its steps wrote into the folder outside node_modules/dist; undefined otherwise.
   */
  checksumLeftBySteps?(key: string, checksum: string): string | undefined;
}

/** Persists last activity timestamps in batches (never on each call). */
export interface ActivityStore {
  recordActivity(entries: readonly { orgId: string; pluginKey: string; at: Date }[]): Promise<void>;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * The caller owns the deadline: `signal` is fresh for this one request and is aborted by the caller when
   * `timeoutMs` passes (the instance manager's callWithDeadline), or, with `signalPerRequest`, is the API
   * request's own signal and the caller fails the call and stops the instance at its deadline. The
   * connection then adds no timer or signal of its own (the SDK's own request timeout, slightly later,
   * stays as a backstop).
   */
  deadlineOwned?: boolean;
  /**
   * `signal` is made for one API request of at most LIMITS.batchCalls calls and dropped with it, so the
   * instance manager hands it to the connection as is instead of a fresh signal per call (the SDK adds a
   * listener per request to the signal it is given and never removes it; an AbortSignal costs ~8 µs to
   * create on Node 20). At the deadline the call fails with TimeoutError and its instance is stopped, which
   * ends the request at the plugin. Never set it for a signal that outlives the request.
   */
  signalPerRequest?: boolean;
  /** tools/call only: the server's progress notifications for this request (a progress token is sent). */
  onProgress?: (progress: { progress: number; total?: number; message?: string }) => void;
  /** tools/call only: sent as the request's `_meta` (shared instances: the calling organization). */
  meta?: Record<string, unknown>;
  /**
   * tools/call only: answers the plugin's sampling, elicitation and roots requests of this call. Unset:
   * the plugin gets an error naming why. See McpPluginConnection for how a request finds its call.
   */
  onServerRequest?: ServerRequestRelay;
  /** tools/call only: the plugin's log notifications of this call. */
  onLog?: (message: PluginLogMessage) => void;
}

/** The organization of a shared instance's process: none; each call names its own in `_meta`. */
export const SHARED_INSTANCE_ORG = '_shared';

/** `_meta` of one tools/call on a shared instance, for the calling organization. */
export interface CallMetaProvider {
  callMetaFor(orgId: string, spec: PluginSpec): Promise<Record<string, unknown>>;
}

/** A core plugin whose manifest opts in to one process for every organization (custom plugins never do). */
export function isSharedSpec(spec: PluginSpec): boolean {
  return spec.sourceType === 'core' && spec.manifest.runtime?.shared === true;
}

/** Why a connection ended. `limit` = killed by a sandbox limit (memory, pids, cpu). */
export type ConnectionEnd =
  | { kind: 'closed' }
  | { kind: 'exited'; code: number | null; signal: string | null; limit?: string }
  /** `error`: what in-flight calls fail with (e.g. RESPONSE_TOO_LARGE); unset: a crash. */
  | { kind: 'error'; message: string; error?: HayError };

/**
 * One live MCP session with one plugin server for one organization: a local child process (stdio) or a
 * remote endpoint. Produced by a ConnectionFactory; owned and closed by the instance manager.
 */
export interface PluginConnection {
  readonly pid: number | undefined;
  readonly transport: 'stdio' | 'http' | 'sse' | 'websocket';
  /** Follows pagination. */
  listTools(options?: CallOptions): Promise<Tool[]>;
  /** Returns the server's CallToolResult unchanged; an `isError` result resolves, it does not throw. */
  callTool(name: string, args: Record<string, unknown>, options?: CallOptions): Promise<CallToolResult>;
  ping(options?: CallOptions): Promise<void>;
  /** Resources, resource templates and prompts (empty for what the server's capabilities lack). */
  listExtras?(options?: CallOptions): Promise<ServerExtras>;
  readResource?(uri: string, options?: CallOptions): Promise<ReadResourceResult>;
  getPrompt?(name: string, args: Record<string, string>, options?: CallOptions): Promise<GetPromptResult>;
  /** An empty completion when the server does not declare the `completions` capability. */
  complete?(request: CompletionRequest, options?: CallOptions): Promise<CompleteResult>;
  /** resources/subscribe; refused with INSTANCE_FAILED when the server does not declare `resources.subscribe`. */
  subscribeResource?(uri: string, options?: CallOptions): Promise<void>;
  unsubscribeResource?(uri: string, options?: CallOptions): Promise<void>;
  /**
   * Fires on notifications/resources/updated with the plugin's own URI, and the organization the plugin
   * named in the notification's `_meta["hay/orgId"]` (a shared instance's way to address one organization).
   */
  onResourceUpdated?(listener: (uri: string, forOrgId?: string) => void): void;
  /** Fires on resources/list_changed or prompts/list_changed. */
  onExtrasChanged?(listener: () => void): void;
  /** Fires once when the session ends for any reason other than close(). */
  onEnd(listener: (end: ConnectionEnd) => void): void;
  /** Fires on tools/list_changed. */
  onToolsChanged(listener: () => void): void;
  /** The last stderr lines of the process (sanitized, see StderrTail), when local. */
  logLines?(): string[];
  /** Resource usage of the process (tree), when local. */
  usage?(): Promise<{ rssBytes: number; cpuSeconds: number } | undefined>;
  /** Escalating stop (stdin close, grace, SIGTERM, grace, SIGKILL of the group). Idempotent. */
  close(): Promise<void>;
}

export interface ConnectionFactory {
  /** Starts (local) or connects (remote) and completes MCP initialize. Rejects on timeout/abort/failure. */
  connect(
    orgId: string,
    spec: PluginSpec,
    options: { signal?: AbortSignal; timeoutMs: number },
  ): Promise<PluginConnection>;
}
