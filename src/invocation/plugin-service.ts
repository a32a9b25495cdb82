import { lstat, open } from 'node:fs/promises';
import path from 'node:path';
import type { AuditLog } from '../audit/audit-log.js';
import {
  AuthError,
  HayError,
  NotFoundError,
  PreconditionError,
  RateLimitError,
  TimeoutError,
  isHayError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { UNKNOWN_LABEL, type Metrics, type CallOutcome } from '../observability/metrics.js';
import { mapLimit } from '../registry/discovery.js';
import type { InstallProgress } from '../registry/installer.js';
import type { PluginRegistry, RegisteredPlugin, ScanReport } from '../registry/plugin-registry.js';
import { withDeadline } from '../runtime/instance/deadline.js';
import type { InstanceManager } from '../runtime/instance/index.js';
import type { InstanceInfo } from '../runtime/instance/types.js';
import { groupUsage } from '../runtime/process/proc-stats.js';
import type {
  CallToolResult,
  CompleteResult,
  CompletionRequest,
  GetPromptResult,
  PluginLogMessage,
  PluginSpec,
  ReadResourceResult,
  ServerExtras,
  ServerRequestRelay,
  Tool,
} from '../runtime/ports.js';
import { isSharedSpec, SHARED_INSTANCE_ORG } from '../runtime/ports.js';
import { scopeAllows } from '../security/key-scopes.js';
import type { RateLimiter } from '../security/rate-limiter.js';
import type { KeyScopes } from '../tenancy/organizations.js';
import { BulkRefreshCache } from '../tenancy/bulk-refresh-cache.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import type { CallFinishedListener } from './call-events.js';
import { sanitizeArguments } from './sanitize.js';
import type { ToolArgumentValidator } from './tool-arguments.js';
import type { ToolResultCache } from './tool-cache.js';
import { UsageStats, type PluginMetrics } from './usage-stats.js';

/** Who is calling: an organization's API key. */
export interface Caller {
  organizationId: string;
  /** Audit actor, e.g. `key:hay_ab12cd34`. */
  actor: string;
  /** Rate-limit bucket of the API key. */
  keyId: string;
  /** Least privilege: the key reaches only these plugins/tools (unset: all of its organization). */
  scopes?: KeyScopes;
}

/** Per-call hooks for callers that relay MCP notifications (the /mcp gateway). */
export interface InvokeOptions {
  /** Progress notifications of the plugin for this call. */
  onProgress?: (progress: { progress: number; total?: number; message?: string }) => void;
  /** Answers the plugin's sampling, elicitation and roots requests of this call (unset: refused). */
  onServerRequest?: ServerRequestRelay;
  /** The plugin's log notifications of this call. */
  onLog?: (message: PluginLogMessage) => void;
  /** `signal` is one API request's and dies with it (see CallOptions.signalPerRequest). */
  signalPerRequest?: boolean;
}

/** What a catalog (the /mcp gateway) needs of one enabled plugin, read without starting it. */
export interface CatalogPlugin {
  pluginId: string;
  pluginKey: string;
  checksum: string;
  /** Tools the manifest declares (capabilities.mcp.tools), as MCP tools. */
  declaredTools: Tool[];
  running: boolean;
}

/** Largest README plugins.readme returns. */
export const README_MAX_BYTES = 256 * 1024;

/** Cached enabled flags, all organizations together (a flag is a few dozen bytes). */
const ENABLED_CACHE_MAX_ENTRIES = 100_000;

export interface PluginSummary {
  id: string;
  name: string;
  version: string;
  type: string[];
  description: string | null;
  sourceType: 'core' | 'custom';
  status: 'ok' | 'invalid' | 'missing';
  error: string | null;
  enabled: boolean;
  install: { installed: boolean; built: boolean; error: string | null };
  instance: { state: string; pid: number | null; lastError: string | null } | null;
  /** Marketplace metadata (manifest `marketplace.*`, else the top-level fields); null when absent. */
  category: string | null;
  tags: string[];
  /** URL or path of the plugin's icon, as the manifest gives it (untrusted text). */
  icon: string | null;
  /** configSchema fields that are required and have no default. */
  requiredConfig: string[];
}

export interface ToolCallInput {
  pluginId: string;
  toolName: string;
  arguments: Record<string, unknown>;
  /** The end user the call is for; routes within-organization canary rollouts. */
  subjectId?: string | undefined;
}

export type BatchResult =
  { ok: true; result: CallToolResult } | { ok: false; error: { code: string; message: string } };

export interface PluginServiceDeps {
  logger: Logger;
  registry: PluginRegistry;
  settings: PluginSettingsService;
  instances: InstanceManager;
  validator: ToolArgumentValidator;
  cache: ToolResultCache;
  audit: AuditLog;
  metrics: Metrics;
  pluginLimiter: RateLimiter;
  keyLimiter: RateLimiter;
  options: { callTimeoutMs: number; batchConcurrency: number; enabledCacheMs: number };
  /**
   * Install/build before the first start (PluginInstaller): a call waits for it within its own deadline,
   * and `progress` is what plugins.get shows while a step runs.
   */
  installs?: {
    ensureReady(spec: PluginSpec): Promise<void>;
    progress(pluginKey: string): InstallProgress | undefined;
  };
  /** Told once per call whose plugin was resolved (src/invocation/call-events.ts); must only buffer. */
  onCallFinished?: CallFinishedListener;
  /** Version routing (src/lifecycle/versions.ts): which kept version an org (or subject) runs. */
  versions?: {
    specFor(orgId: string, plugin: RegisteredPlugin, subjectId?: string): PluginSpec | undefined;
    describe(orgId: string, plugin: RegisteredPlugin): Record<string, unknown>;
  };
  /** Dependency rules (src/lifecycle/dependencies.ts): may refuse an enable or disable. */
  guard?: {
    beforeEnable(
      caller: Caller,
      plugin: RegisteredPlugin,
      options: { enableDependencies: boolean },
    ): Promise<void>;
    beforeDisable(orgId: string, plugin: RegisteredPlugin): Promise<void>;
  };
}

/**
 * What an organization can do with plugins: list, enable/configure, list tools, invoke. Enforces
 * visibility (another org's custom plugin is NOT_FOUND), enablement, rate limits, argument validation
 * and the opt-in result cache, and audits and measures every call. The enabled flag is cached for
 * `enabledCacheMs`, refreshed in bulk (one query for many organizations) and at once on local changes,
 * so the call path reads no database row.
 */
export class PluginService {
  private readonly d: PluginServiceDeps;
  /** `${orgId}\u0000${pluginKey}` -> enabled, read in bulk (one query for many organizations). */
  private readonly enabledCache: BulkRefreshCache<boolean>;
  private readonly usage = new UsageStats();

  constructor(deps: PluginServiceDeps) {
    this.d = deps;
    this.enabledCache = new BulkRefreshCache(
      async (keys) => {
        const pairs = keys.map((key) => {
          const [organizationId = '', pluginKey = ''] = key.split('\u0000');
          return { organizationId, pluginKey };
        });
        const flags = await deps.settings.enabledFlags(pairs);
        return new Map(keys.map((key, i) => [key, flags[i] ?? false]));
      },
      { ttlMs: deps.options.enabledCacheMs, maxEntries: ENABLED_CACHE_MAX_ENTRIES },
    );
    deps.settings.on('changed', (e) => {
      this.enabledCache.set(`${e.organizationId}\u0000${e.pluginKey}`, e.enabled);
      deps.cache.invalidate(e.pluginKey, e.organizationId);
      if (!e.enabled) void deps.instances.stopInstance(e.organizationId, e.pluginKey, 'disabled');
      else if (e.fields.length > 0)
        void deps.instances.stopInstance(e.organizationId, e.pluginKey, 'configuration changed');
    });
    deps.instances.on('toolsChanged', (e) => {
      // a shared instance's list is every organization's: their cached results go with it
      deps.cache.invalidate(e.pluginKey, e.orgId === SHARED_INSTANCE_ORG ? undefined : e.orgId);
      const p = deps.registry.getByKey(e.pluginKey);
      if (p) deps.validator.forget(versionKey(e.orgId, p));
    });
    deps.registry.on('changed', (p) => {
      deps.cache.invalidate(p.key);
      // with version routing the new version is staged first; instances swap (draining) when routed to it
      if (!deps.versions) void deps.instances.restartPlugin(p.key, 'plugin files changed');
    });
    deps.registry.on('missing', (p) => void deps.instances.stopAllForPlugin(p.key, 'plugin folder missing'));
  }

  async list(orgId: string): Promise<PluginSummary[]> {
    const plugins = this.d.registry.list(orgId);
    const enabled = await this.d.settings.enabledMap(
      orgId,
      plugins.map((p) => p.key),
    );
    const instances = new Map(this.d.instances.listInstances({ orgId }).map((i) => [i.pluginKey, i]));
    return plugins.map((p) => summarize(p, enabled.get(p.key) ?? false, instances.get(p.key)));
  }

  async get(
    orgId: string,
    pluginId: string,
  ): Promise<
    PluginSummary & {
      configuration: Record<string, unknown>;
      tools: unknown[];
      configSchema: unknown;
      /** The install or build step running now (phase, elapsedMs, lastLine), else null. */
      installing: InstallProgress | null;
      versions?: Record<string, unknown>;
    }
  > {
    const p = this.visible(orgId, pluginId);
    const settings = await this.d.settings.get(orgId, p.key, p.manifest?.configSchema ?? {});
    const instance = this.d.instances.listInstances({ orgId }).find((i) => i.pluginKey === p.key);
    return {
      ...summarize(p, settings.enabled, instance),
      configuration: settings.configuration,
      configSchema: p.manifest?.configSchema ?? {},
      tools: p.manifest?.capabilities?.mcp?.tools ?? [],
      installing: this.d.installs?.progress(p.key) ?? null,
      ...(this.d.versions ? { versions: this.d.versions.describe(orgId, p) } : {}),
    };
  }

  async enable(
    caller: Caller,
    pluginId: string,
    configuration: Record<string, unknown>,
    options: { enableDependencies?: boolean } = {},
  ): Promise<{ success: true }> {
    const p = this.runnable(caller.organizationId, pluginId);
    await this.d.guard?.beforeEnable(caller, p, { enableDependencies: options.enableDependencies ?? false });
    const fields = await this.audited(caller, p, 'plugin.enable', () =>
      this.d.settings.enable(caller.organizationId, p.key, p.manifest?.configSchema ?? {}, configuration),
    );
    this.d.audit.record({
      organizationId: caller.organizationId,
      actor: caller.actor,
      action: 'plugin.configure',
      pluginId: p.pluginId,
      outcome: 'ok',
      details: { fields },
    });
    return { success: true };
  }

  async configure(
    caller: Caller,
    pluginId: string,
    configuration: Record<string, unknown>,
  ): Promise<{ success: true; changed: string[] }> {
    const p = this.visible(caller.organizationId, pluginId);
    const changed = await this.audited(caller, p, 'plugin.configure', () =>
      this.d.settings.configure(caller.organizationId, p.key, p.manifest?.configSchema ?? {}, configuration),
    );
    return { success: true, changed };
  }

  async disable(caller: Caller, pluginId: string): Promise<{ success: true }> {
    const p = this.visible(caller.organizationId, pluginId);
    await this.d.guard?.beforeDisable(caller.organizationId, p);
    await this.audited(caller, p, 'plugin.disable', () =>
      this.d.settings.disable(caller.organizationId, p.key),
    );
    await this.d.instances.stopInstance(caller.organizationId, p.key, 'disabled');
    return { success: true };
  }

  async listTools(caller: Caller, pluginId: string): Promise<Tool[]> {
    this.inScope(caller, pluginId);
    const { plugin, spec } = await this.callable(caller.organizationId, pluginId);
    await this.awaitInstall(plugin, spec);
    try {
      return await this.d.instances.listTools(caller.organizationId, spec, {
        timeoutMs: this.d.options.callTimeoutMs,
      });
    } catch (err) {
      throw this.installingInstead(plugin, err);
    }
  }

  /**
   * The tool-call path: visibility, enablement, rate limits, tool lookup (server's tools/list is the
   * truth), argument validation, cache, call. A tool's `isError` result is returned, not thrown.
   */
  async invokeTool(
    caller: Caller,
    input: ToolCallInput,
    signal?: AbortSignal,
    options?: InvokeOptions,
  ): Promise<CallToolResult> {
    const started = performance.now();
    const orgId = caller.organizationId;
    // metric labels name only what the host matched: a registered plugin, a tool it listed or declared
    let pluginLabel = UNKNOWN_LABEL;
    let matchedTool: string | undefined;
    let pluginKey: string | undefined;
    let outcome: CallOutcome = 'error';
    let version = '';
    let errorCode: string | undefined;
    try {
      // the API key's limit comes before any lookup: unknown names cost the caller its own budget
      this.limitKey(caller);
      this.inScope(caller, input.pluginId, input.toolName);
      const { plugin, spec } = await this.callable(orgId, input.pluginId, input.subjectId);
      pluginLabel = plugin.pluginId;
      pluginKey = plugin.key;
      version = spec.version;
      const declared = plugin.manifest?.capabilities?.mcp?.tools?.find((t) => t.name === input.toolName);
      if (declared) matchedTool = declared.name;
      this.limitPlugin(caller, plugin);
      await this.awaitInstall(plugin, spec, signal);
      const ttl = declared?.cache?.ttlSeconds ?? 0;
      const cacheKey =
        ttl > 0
          ? this.d.cache.key(orgId, plugin.key, spec.checksum, input.toolName, input.arguments)
          : undefined;
      let cached = false;
      let outputSchema: Record<string, unknown> | undefined;
      // validators are per plugin version; a shared instance's list is every organization's
      const schemas = versionKey(isSharedSpec(spec) ? SHARED_INSTANCE_ORG : orgId, plugin);
      // a result made with the client's input (sampling, elicitation, roots) is that client's: not cached
      let askedClient = false;
      const onServerRequest = options?.onServerRequest;
      const relay: ServerRequestRelay | undefined = onServerRequest
        ? (request, requestSignal) => {
            askedClient = true;
            return onServerRequest(request, requestSignal);
          }
        : undefined;
      // tool lookup, validation and cache run inside the same use of the instance as the call
      const result = await this.d.instances.callTool(
        orgId,
        spec,
        input.toolName,
        input.arguments,
        {
          signal,
          timeoutMs: this.d.options.callTimeoutMs,
          ...(options?.signalPerRequest ? { signalPerRequest: true } : {}),
          ...(options?.onProgress ? { onProgress: options.onProgress } : {}),
          ...(relay ? { onServerRequest: relay } : {}),
          ...(options?.onLog ? { onLog: options.onLog } : {}),
        },
        (tools) => {
          const tool = tools.find((t) => t.name === input.toolName);
          if (!tool)
            throw new NotFoundError(
              'TOOL_NOT_FOUND',
              `plugin ${plugin.pluginId} has no tool named "${input.toolName}"`,
            );
          matchedTool = tool.name;
          outputSchema = tool.outputSchema;
          this.d.validator.validate(
            schemas,
            tool.name,
            tool.inputSchema ?? declared?.input_schema,
            input.arguments,
          );
          if (!cacheKey) return undefined;
          const hit = this.d.cache.get(cacheKey);
          this.d.metrics.recordCacheLookup(plugin.pluginId, hit !== undefined);
          cached = hit !== undefined;
          return hit;
        },
      );
      if (cached) {
        outcome = 'cached';
        return result;
      }
      this.d.validator.validateOutput(schemas, plugin.pluginId, input.toolName, outputSchema, result);
      if (cacheKey && !askedClient) this.d.cache.set(cacheKey, result, ttl);
      outcome = result.isError ? 'tool_error' : 'ok';
      return result;
    } catch (err) {
      outcome = outcomeOf(err);
      errorCode = isHayError(err) ? err.code : undefined;
      throw pluginKey === undefined ? err : this.installingInstead(this.d.registry.getByKey(pluginKey), err);
    } finally {
      const ms = performance.now() - started;
      this.d.metrics.recordCall(pluginLabel, matchedTool ?? UNKNOWN_LABEL, outcome, ms / 1000);
      if (this.d.logger.isLevelEnabled('debug'))
        this.d.logger.debug(
          {
            orgId,
            pluginId: pluginKey === undefined ? input.pluginId.slice(0, 100) : pluginLabel,
            tool: input.toolName.slice(0, 100),
            durationMs: Math.round(ms * 100) / 100,
            outcome,
          },
          'tool call',
        );
      if (pluginKey !== undefined) {
        this.d.onCallFinished?.({
          orgId,
          pluginId: pluginLabel,
          version,
          tool: matchedTool,
          outcome,
          errorCode,
          durationMs: ms,
          at: Date.now(),
        });
        this.usage.record(orgId, pluginKey, ms, outcome !== 'ok' && outcome !== 'cached');
        this.d.audit.record({
          organizationId: orgId,
          actor: caller.actor,
          action: 'tool.invoke',
          pluginId: pluginLabel,
          outcome:
            outcome === 'ok' || outcome === 'cached' ? 'ok' : outcome === 'rate_limited' ? 'denied' : 'error',
          details: {
            tool: input.toolName.slice(0, 100),
            durationMs: Math.round(ms * 100) / 100,
            result: outcome,
            arguments: sanitizeArguments(input.arguments),
          },
        });
      }
    }
  }

  /** Runs calls in parallel (bounded), one result per call in order; one failure never fails the others. */
  async invokeToolsBatch(
    caller: Caller,
    calls: readonly ToolCallInput[],
    signal?: AbortSignal,
  ): Promise<BatchResult[]> {
    return mapLimit(calls, this.d.options.batchConcurrency, async (call): Promise<BatchResult> => {
      try {
        return { ok: true, result: await this.invokeTool(caller, call, signal) };
      } catch (err) {
        return {
          ok: false,
          error: {
            code: isHayError(err) ? err.code : 'INTERNAL',
            message: isHayError(err) ? err.message : 'Internal error',
          },
        };
      }
    });
  }

  /**
   * The organization's enabled, runnable plugins with their manifest-declared tools and whether an
   * instance runs now. Starts nothing.
   */
  async catalogPlugins(orgId: string): Promise<CatalogPlugin[]> {
    const plugins = this.d.registry
      .list(orgId)
      .filter((p) => p.status === 'ok' && p.manifest !== null && this.d.registry.toSpec(p));
    const enabled = await this.d.settings.enabledMap(
      orgId,
      plugins.map((p) => p.key),
    );
    const running = new Set(
      this.d.instances
        .listInstances({ orgId })
        .filter((i) => i.state === 'running')
        .map((i) => i.pluginKey),
    );
    return plugins
      .filter((p) => enabled.get(p.key) === true)
      .map((p) => ({
        pluginId: p.pluginId,
        pluginKey: p.key,
        checksum: p.checksum,
        declaredTools: (p.manifest?.capabilities?.mcp?.tools ?? []).map((t) => ({
          name: t.name,
          ...(t.description ? { description: t.description } : {}),
          inputSchema: {
            type: 'object' as const,
            ...(t.input_schema as Record<string, unknown> | undefined),
          },
        })),
        running: running.has(p.key),
      }));
  }

  /**
   * tools/list of the (org, plugin) instance. `start: false`: only if one is running now (else
   * undefined; nothing is started). No caller: for host-internal catalogs; visibility still applies.
   */
  async instanceTools(
    orgId: string,
    pluginId: string,
    options: { start: boolean; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<Tool[] | undefined> {
    const { plugin, spec } = await this.callable(orgId, pluginId);
    if (
      !options.start &&
      !this.d.instances
        .listInstances({ orgId })
        .some((i) => i.pluginKey === plugin.key && i.state === 'running')
    )
      return undefined;
    return this.d.instances.listTools(orgId, spec, {
      timeoutMs: options.timeoutMs ?? this.d.options.callTimeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /**
   * Resources, resource templates and prompts of the (org, plugin) instance, only if one is running now
   * (else undefined; nothing is started).
   */
  async instanceExtras(orgId: string, pluginId: string): Promise<ServerExtras | undefined> {
    const { plugin, spec } = await this.callable(orgId, pluginId);
    if (
      !this.d.instances
        .listInstances({ orgId })
        .some((i) => i.pluginKey === plugin.key && i.state === 'running')
    )
      return undefined;
    return this.d.instances.listExtras(orgId, spec, { timeoutMs: this.d.options.callTimeoutMs });
  }

  /**
   * resources/read of a plugin, with the guarantees of invokeTool: key and plugin rate limits, scope
   * (a key restricted to named tools reaches no resources), enablement, install wait, audit.
   */
  readResource(
    caller: Caller,
    pluginId: string,
    uri: string,
    signal?: AbortSignal,
  ): Promise<ReadResourceResult> {
    const audited = { action: 'resource.read', details: { uri: uri.slice(0, 200) } } as const;
    return this.pluginRequest(caller, pluginId, 'resources', audited, (orgId, spec) =>
      this.d.instances.readResource(orgId, spec, uri, { signal, timeoutMs: this.d.options.callTimeoutMs }),
    );
  }

  /** prompts/get of a plugin, with the guarantees of readResource. */
  getPrompt(
    caller: Caller,
    pluginId: string,
    name: string,
    args: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<GetPromptResult> {
    const audited = { action: 'prompt.get', details: { prompt: name.slice(0, 100) } } as const;
    return this.pluginRequest(caller, pluginId, 'prompts', audited, (orgId, spec) =>
      this.d.instances.getPrompt(orgId, spec, name, args, {
        signal,
        timeoutMs: this.d.options.callTimeoutMs,
      }),
    );
  }

  /**
   * completion/complete of a plugin's prompt argument or resource template argument, with the guarantees
   * of readResource except the audit row (completions are asked for while the user types).
   */
  complete(
    caller: Caller,
    pluginId: string,
    request: CompletionRequest,
    signal?: AbortSignal,
  ): Promise<CompleteResult> {
    return this.pluginRequest(
      caller,
      pluginId,
      request.ref.type === 'ref/prompt' ? 'prompts' : 'resources',
      undefined,
      (orgId, spec) =>
        this.d.instances.complete(orgId, spec, request, { signal, timeoutMs: this.d.options.callTimeoutMs }),
    );
  }

  /**
   * resources/subscribe or unsubscribe of a plugin's own URI, with the guarantees of complete (no audit
   * row). The plugin's subscription lasts as long as its instance (see InstanceManager.subscribeResource);
   * `shared`: that instance serves every organization.
   */
  subscribeResource(
    caller: Caller,
    pluginId: string,
    uri: string,
    subscribe: boolean,
  ): Promise<{ shared: boolean }> {
    return this.pluginRequest(caller, pluginId, 'resources', undefined, (orgId, spec) =>
      this.d.instances.subscribeResource(orgId, spec, uri, subscribe, {
        timeoutMs: this.d.options.callTimeoutMs,
      }),
    );
  }

  private async pluginRequest<T>(
    caller: Caller,
    pluginId: string,
    what: 'resources' | 'prompts',
    audited: { action: 'resource.read' | 'prompt.get'; details: Record<string, unknown> } | undefined,
    run: (orgId: string, spec: PluginSpec) => Promise<T>,
  ): Promise<T> {
    const orgId = caller.organizationId;
    this.limitKey(caller);
    if (caller.scopes && !caller.scopes.plugins?.includes(pluginId))
      throw new AuthError(
        'FORBIDDEN',
        `this API key is restricted and may not use plugin ${pluginId}'s ${what}`,
      );
    const { plugin, spec } = await this.callable(orgId, pluginId);
    this.limitPlugin(caller, plugin);
    await this.awaitInstall(plugin, spec);
    if (!audited) {
      try {
        return await run(orgId, spec);
      } catch (err) {
        throw this.installingInstead(plugin, err);
      }
    }
    const { action, details } = audited;
    try {
      const out = await run(orgId, spec);
      this.d.audit.record({
        organizationId: orgId,
        actor: caller.actor,
        action,
        pluginId: plugin.pluginId,
        outcome: 'ok',
        details,
      });
      return out;
    } catch (err) {
      this.d.audit.record({
        organizationId: orgId,
        actor: caller.actor,
        action,
        pluginId: plugin.pluginId,
        outcome: 'error',
        details: { ...details, code: isHayError(err) ? err.code : 'INTERNAL' },
      });
      throw this.installingInstead(plugin, err);
    }
  }

  /**
   * The plugin's README.md (or readme.md), at most README_MAX_BYTES, as untrusted text; null when the
   * folder has none or it is not a regular file (a symlink is not followed).
   */
  async readme(orgId: string, pluginId: string): Promise<{ markdown: string | null; truncated: boolean }> {
    const p = this.visible(orgId, pluginId);
    for (const name of ['README.md', 'readme.md', 'Readme.md']) {
      const file = path.join(p.dir, name);
      const st = await lstat(file).catch(() => undefined);
      if (!st?.isFile()) continue;
      const handle = await open(file, 'r');
      try {
        const buf = Buffer.alloc(Math.min(st.size, README_MAX_BYTES));
        const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
        return {
          markdown: buf.subarray(0, bytesRead).toString('utf8'),
          truncated: st.size > README_MAX_BYTES,
        };
      } finally {
        await handle.close();
      }
    }
    return { markdown: null, truncated: false };
  }

  /**
   * The organization's instances; `usage` is the process group's resident memory and CPU seconds (Linux
   * /proc; null elsewhere or when the process is gone).
   */
  instances(
    orgId: string,
  ): (InstanceInfo & { pluginId: string; usage: { rssBytes: number; cpuSeconds: number } | null })[] {
    return this.d.instances
      .listInstances({ orgId })
      .map((i) => ({ ...i, usage: i.pid !== null ? (groupUsage(i.pid) ?? null) : null }));
  }

  /**
   * Stops the organization's instance of the plugin (drained first); `restart` then starts it again by
   * listing its tools. A shared instance serves every organization and is refused (FORBIDDEN). Audited as
   * instance.stop / instance.restart.
   */
  async stopInstance(caller: Caller, pluginId: string, restart: boolean): Promise<{ success: true }> {
    const p = this.visible(caller.organizationId, pluginId);
    const info = this.d.instances
      .listInstances({ orgId: caller.organizationId })
      .find((i) => i.pluginKey === p.key);
    if (info?.shared)
      throw new AuthError(
        'FORBIDDEN',
        `plugin ${pluginId} runs one shared instance for every organization; only the operator restarts it`,
      );
    await this.audited(caller, p, restart ? 'instance.restart' : 'instance.stop', async () => {
      await this.d.instances.stopInstance(
        caller.organizationId,
        p.key,
        `${restart ? 'restart' : 'stop'} by ${caller.actor}`,
      );
      if (restart) await this.listTools(caller, pluginId);
    });
    return { success: true };
  }

  /**
   * The last `maxLines` stderr lines of the organization's own instance of the plugin (running, else the
   * last one that ran), sanitized like errors (no stack frames, environment values or host paths). A
   * shared instance serves every organization, so its output is not shown: no lines and `shared: true`.
   */
  logs(orgId: string, pluginId: string, maxLines: number): { lines: string[]; shared: boolean } {
    const p = this.visible(orgId, pluginId);
    if (p.sourceType === 'core' && p.manifest?.runtime?.shared === true) return { lines: [], shared: true };
    return this.d.instances.logLines(orgId, p.key, maxLines);
  }

  metricsFor(orgId: string, pluginId: string): PluginMetrics {
    const p = this.visible(orgId, pluginId);
    const active = this.d.instances
      .listInstances({ orgId })
      .filter((i) => i.pluginKey === p.key && i.state === 'running').length;
    return this.usage.get(orgId, p.key, active);
  }

  rescan(): Promise<ScanReport> {
    return this.d.registry.scan();
  }

  /**
   * Waits, within the call's deadline, for a plugin that is not installed and built yet; past it the call
   * answers PLUGIN_NOT_READY naming the step (which keeps running for the next call).
   */
  private async awaitInstall(
    plugin: RegisteredPlugin,
    spec: PluginSpec,
    signal?: AbortSignal,
  ): Promise<void> {
    const installs = this.d.installs;
    if (!installs || (plugin.installed && plugin.built)) return;
    const ready = installs.ensureReady(spec);
    ready.catch(() => {});
    await withDeadline(() => ready, {
      timeoutMs: this.d.options.callTimeoutMs,
      signal,
      timeoutError: () =>
        this.installingError(plugin) ??
        new TimeoutError(
          `plugin ${plugin.pluginId} did not finish installing within ${this.d.options.callTimeoutMs} ms`,
        ),
    });
  }

  /**
   * A call that ran out of time while the plugin's install or build still runs gets a PLUGIN_NOT_READY
   * naming the step (the step keeps running; a later call finds the plugin ready) instead of TIMEOUT.
   */
  private installingInstead(plugin: RegisteredPlugin | undefined, err: unknown): unknown {
    if (!plugin || !isHayError(err) || err.code !== 'TIMEOUT') return err;
    return this.installingError(plugin) ?? err;
  }

  /** PLUGIN_NOT_READY naming the install/build step running for `plugin`, if one runs. */
  private installingError(plugin: RegisteredPlugin): PreconditionError | undefined {
    const progress = this.d.installs?.progress(plugin.key);
    if (!progress) return undefined;
    const seconds = Math.round(progress.elapsedMs / 1000);
    return new PreconditionError(
      'PLUGIN_NOT_READY',
      `plugin ${plugin.pluginId} is still installing (${progress.phase} step running for ${seconds} s${progress.lastLine ? `, last output: ${progress.lastLine}` : ''}); retry later, or watch plugins.get`,
      { phase: progress.phase, elapsedMs: progress.elapsedMs },
    );
  }

  /** The plugin as `orgId` sees it, or NOT_FOUND (also for another organization's custom plugin). */
  visible(orgId: string, pluginId: string): RegisteredPlugin {
    const p = this.d.registry.get(orgId, pluginId);
    if (!p) throw new NotFoundError('PLUGIN_NOT_FOUND', `plugin "${pluginId}" not found`);
    return p;
  }

  private runnable(
    orgId: string,
    pluginId: string,
  ): RegisteredPlugin & { manifest: NonNullable<RegisteredPlugin['manifest']> } {
    const p = this.visible(orgId, pluginId);
    if (p.status === 'missing' || p.manifest === null)
      throw new PreconditionError(
        'PLUGIN_NOT_READY',
        p.status === 'missing'
          ? `plugin ${pluginId} is unavailable: its folder ${p.relPath} is missing`
          : `plugin ${pluginId} has an invalid manifest: ${p.validationError ?? 'unknown error'}`,
      );
    if (p.status === 'invalid')
      throw new PreconditionError(
        'PLUGIN_NOT_READY',
        `plugin ${pluginId} is unavailable: ${p.validationError ?? 'invalid'}`,
      );
    return p as RegisteredPlugin & { manifest: NonNullable<RegisteredPlugin['manifest']> };
  }

  private async callable(
    orgId: string,
    pluginId: string,
    subjectId?: string,
  ): Promise<{ plugin: RegisteredPlugin; spec: PluginSpec }> {
    const visible = this.versions(orgId, pluginId, subjectId);
    const plugin = visible.routed ? visible.plugin : this.runnable(orgId, pluginId);
    const cacheKey = `${orgId}\u0000${plugin.key}`;
    const enabled = this.enabledCache.fresh(cacheKey) ?? (await this.enabledCache.get(cacheKey));
    if (!enabled)
      throw new PreconditionError(
        'PLUGIN_NOT_ENABLED',
        `plugin ${pluginId} is not enabled for this organization; call plugins.enable first`,
      );
    const spec = visible.routed ?? this.d.registry.toSpec(plugin);
    if (!spec) throw new PreconditionError('PLUGIN_NOT_READY', `plugin ${pluginId} is not available`);
    return { plugin, spec };
  }

  /** A key restricted to some plugins/tools: anything else is FORBIDDEN. */
  private inScope(caller: Caller, pluginId: string, tool?: string): void {
    if (scopeAllows(caller.scopes, pluginId, tool)) return;
    throw new AuthError(
      'FORBIDDEN',
      tool === undefined
        ? `this API key is restricted and may not use plugin ${pluginId}`
        : `this API key is restricted and may not call ${pluginId}/${tool}`,
    );
  }

  /** The visible plugin and, with version routing, the kept version this call goes to. */
  private versions(
    orgId: string,
    pluginId: string,
    subjectId: string | undefined,
  ): { plugin: RegisteredPlugin; routed: PluginSpec | undefined } {
    if (!this.d.versions) return { plugin: this.visible(orgId, pluginId), routed: undefined };
    const plugin = this.visible(orgId, pluginId);
    return { plugin, routed: this.d.versions.specFor(orgId, plugin, subjectId) };
  }

  private limitKey(caller: Caller): void {
    const taken = this.d.keyLimiter.take(caller.keyId);
    if (taken.ok) return;
    this.d.metrics.recordRateLimited(UNKNOWN_LABEL, 'api_key');
    const retry = Math.ceil(taken.retryAfterMs / 1000);
    throw new RateLimitError(`rate limit for this API key exceeded; retry in ${retry} s`, taken.retryAfterMs);
  }

  private limitPlugin(caller: Caller, plugin: RegisteredPlugin): void {
    const taken = this.d.pluginLimiter.take(`${caller.organizationId}\u0000${plugin.key}`);
    if (taken.ok) return;
    this.d.metrics.recordRateLimited(plugin.pluginId, 'plugin');
    const retry = Math.ceil(taken.retryAfterMs / 1000);
    throw new RateLimitError(
      `rate limit for plugin ${plugin.pluginId} exceeded for this organization; retry in ${retry} s`,
      taken.retryAfterMs,
    );
  }

  private async audited<T>(
    caller: Caller,
    p: RegisteredPlugin,
    action: 'plugin.enable' | 'plugin.disable' | 'plugin.configure' | 'instance.stop' | 'instance.restart',
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      const out = await fn();
      this.d.audit.record({
        organizationId: caller.organizationId,
        actor: caller.actor,
        action,
        pluginId: p.pluginId,
        outcome: 'ok',
        details: Array.isArray(out) ? { fields: out } : {},
      });
      return out;
    } catch (err) {
      this.d.audit.record({
        organizationId: caller.organizationId,
        actor: caller.actor,
        action,
        pluginId: p.pluginId,
        outcome: 'error',
        details: { code: err instanceof HayError ? err.code : 'INTERNAL' },
      });
      throw err;
    }
  }
}

/**
 * Names one instance's tool list for the argument validators: per organization, except a shared instance
 * (orgId SHARED_INSTANCE_ORG), whose one list serves every organization, so they share its validators.
 */
function versionKey(orgId: string, p: RegisteredPlugin): string {
  return `${orgId}:${p.key}:${p.checksum}`;
}

function outcomeOf(err: unknown): CallOutcome {
  if (!isHayError(err)) return 'error';
  switch (err.code) {
    case 'TIMEOUT':
      return 'timeout';
    case 'RATE_LIMITED':
      return 'rate_limited';
    case 'CAPACITY':
      return 'capacity';
    case 'ARGUMENTS_INVALID':
    case 'TOOL_NOT_FOUND':
    case 'PLUGIN_NOT_FOUND':
      return 'invalid';
    default:
      return 'error';
  }
}

function summarize(p: RegisteredPlugin, enabled: boolean, instance: InstanceInfo | undefined): PluginSummary {
  const m = p.manifest;
  return {
    id: p.pluginId,
    name: p.name,
    version: p.version,
    type: p.manifest?.type ?? [],
    description: p.manifest?.description ?? null,
    sourceType: p.sourceType,
    status: p.status,
    error: p.validationError,
    enabled,
    install: { installed: p.installed, built: p.built, error: p.installError ?? p.buildError },
    instance: instance ? { state: instance.state, pid: instance.pid, lastError: instance.lastError } : null,
    category: m?.marketplace?.category ?? m?.category ?? null,
    tags: m?.marketplace?.tags ?? m?.tags ?? [],
    icon: m?.marketplace?.icon ?? m?.icon ?? null,
    requiredConfig: Object.entries(m?.configSchema ?? {})
      .filter(([, f]) => f.required === true && f.default === undefined)
      .map(([name]) => name),
  };
}
