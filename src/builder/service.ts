import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import type { AuditLog } from '../audit/audit-log.js';
import { createGuardedFetch } from '../egress/guarded-fetch.js';
import type { EgressPolicy } from '../egress/policy.js';
import {
  DefinitionError,
  EgressError,
  HayError,
  NotFoundError,
  PreconditionError,
  ValidationError,
  isHayError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { RegisteredPlugin } from '../registry/plugin-registry.js';
import type { UploadResult } from '../registry/uploads.js';
import { DEFINITION_FILE, validateDefinition, type Definition } from './engine/definition.js';
import {
  configProblems,
  executeTool,
  paramProblems,
  type FetchFn,
  type RenderedRequest,
  type ToolResult,
} from './engine/execute.js';
import { networkOf, pluginFilesOf, RUNTIME_PACKAGE } from './plugin-files.js';

/** Who calls (the API's `ctx.caller`). */
export interface BuilderCaller {
  organizationId: string;
  actor: string;
}

export interface BuilderDeps {
  logger: Logger;
  audit: AuditLog;
  registry: {
    get(orgId: string, pluginId: string): RegisteredPlugin | undefined;
    listAll(): RegisteredPlugin[];
  };
  /** The custom-plugin install path (PluginUploadService.installFiles). */
  uploads: {
    installFiles(
      orgId: string,
      actor: string,
      files: Readonly<Record<string, string>>,
      options: {
        action: 'builder.save';
        accept?: (pluginId: string, currentDir: string | undefined) => Promise<void>;
      },
    ): Promise<UploadResult>;
  };
  /** Kept versions of a plugin (lifecycle), to pick the next version number. */
  versions(orgId: string, pluginId: string): Promise<readonly string[]>;
  /**
   * The organization's stored (decrypted) configuration of its plugin `pluginId`, or undefined when it has
   * none: `builder.test` fills fields sent as `{"set": true}` from it, so a secret need not be typed again.
   */
  storedConfiguration(orgId: string, pluginId: string): Promise<Record<string, unknown> | undefined>;
  /** The tenant egress policy `builder.test` requests go through. */
  policy: EgressPolicy;
  /** False when the runtime is not built (dist/ missing): saving is refused with PLUGIN_NOT_READY. */
  runtimeAvailable: boolean;
  options: {
    testTimeoutMs: number;
    testMaxResponseBytes: number;
    testsPerOrg: number;
    connectTimeoutMs: number;
  };
}

export interface BuilderTestInput {
  definition: unknown;
  toolName: string;
  params: Record<string, unknown>;
  configuration: Record<string, unknown>;
}

export interface BuilderTestResult {
  /** HTTP status, or null when no response arrived (timeout, network error, a value that cannot be sent). */
  status: number | null;
  durationMs: number;
  /** What the tool would return through `plugins.invokeTool`. */
  result: ToolResult;
  /** The request sent, with encrypted configuration values replaced by `[secret]`. */
  request: RenderedRequest | null;
}

export interface BuilderPluginView {
  pluginId: string;
  version: string;
  status: RegisteredPlugin['status'];
  definition: Definition;
}

/**
 * The no-code plugin builder: definitions (src/builder/engine/definition.ts) saved as custom plugins of
 * the organization through the upload path (validated, versioned, rolled back like any upload) and run by
 * the host's runtime; one-off test calls of unsaved definitions through the egress-guarded fetch.
 */
export class BuilderService {
  private readonly running = new Map<string, number>();

  constructor(private readonly d: BuilderDeps) {}

  /**
   * Creates or updates the organization's no-code plugin `definition.id`. `version` defaults to one patch
   * above the highest version kept for it (1.0.0 first). Refuses (CONFLICT) to replace an uploaded
   * plugin that is not a no-code one.
   */
  async save(
    caller: BuilderCaller,
    input: { definition: unknown; version?: string | undefined },
  ): Promise<{ pluginId: string; version: string; replaced: boolean }> {
    const def = this.parse(input.definition);
    if (!this.d.runtimeAvailable)
      throw new PreconditionError(
        'PLUGIN_NOT_READY',
        'the no-code runtime is not built on this host (run `npm run build`)',
      );
    const version = input.version ?? (await this.nextVersion(caller.organizationId, def.id));
    const result = await this.d.uploads.installFiles(
      caller.organizationId,
      caller.actor,
      pluginFilesOf(def, version),
      {
        action: 'builder.save',
        accept: async (_id, currentDir) => {
          if (currentDir !== undefined && !(await isNoCodeFolder(currentDir)))
            throw new HayError(
              'CONFLICT',
              `plugin ${def.id} is an uploaded plugin, not a no-code one; choose another id or uninstall it first`,
            );
        },
      },
    );
    this.d.logger.info(
      {
        orgId: caller.organizationId,
        pluginId: result.pluginId,
        version: result.version,
        tools: def.tools.length,
      },
      'no-code plugin saved',
    );
    return { pluginId: result.pluginId, version: result.version, replaced: result.replaced };
  }

  /** The stored definition of the organization's no-code plugin (PLUGIN_NOT_FOUND for any other plugin). */
  async get(orgId: string, pluginId: string): Promise<BuilderPluginView> {
    const p = this.d.registry.get(orgId, pluginId);
    const notFound = () => new NotFoundError('PLUGIN_NOT_FOUND', `no-code plugin "${pluginId}" not found`);
    if (!p || p.sourceType !== 'custom' || p.organizationId !== orgId) throw notFound();
    if (!(await isNoCodeFolder(p.dir))) throw notFound();
    const checked = validateDefinition(await readJsonNoFollow(path.join(p.dir, DEFINITION_FILE)));
    if (!checked.ok) throw notFound();
    return { pluginId, version: p.version, status: p.status, definition: checked.definition };
  }

  /** The organization's no-code plugins. */
  async list(orgId: string): Promise<{ pluginId: string; name: string; version: string; status: string }[]> {
    const own = this.d.registry
      .listAll()
      .filter((p) => p.sourceType === 'custom' && p.organizationId === orgId && p.status !== 'missing');
    const out: { pluginId: string; name: string; version: string; status: string }[] = [];
    for (const p of own)
      if (await isNoCodeFolder(p.dir))
        out.push({ pluginId: p.pluginId, name: p.name, version: p.version, status: p.status });
    return out.sort((a, b) => a.pluginId.localeCompare(b.pluginId));
  }

  /**
   * Runs one tool of an unsaved definition against the live endpoint, host-side through the
   * egress-guarded fetch with the same network rules the saved plugin gets: loopback, private and
   * metadata addresses are refused (EGRESS_DENIED) unless the operator's HAY_EGRESS_ALLOW permits them.
   * Bounded by HAY_BUILDER_TEST_TIMEOUT_MS, HAY_BUILDER_TEST_MAX_RESPONSE_BYTES and HAY_BUILDER_TESTS_PER_ORG
   * tests at once (CAPACITY beyond). A configuration value `{"set": true}` takes the organization's stored
   * value of the saved plugin with the same id (so a stored secret is usable without being sent again).
   * Audited as `builder.test` (tool, status, duration; no values).
   */
  async test(
    caller: BuilderCaller,
    input: BuilderTestInput,
    signal?: AbortSignal,
  ): Promise<BuilderTestResult> {
    const orgId = caller.organizationId;
    const def = this.parse(input.definition);
    const tool = def.tools.find((t) => t.name === input.toolName);
    if (!tool) throw new NotFoundError('TOOL_NOT_FOUND', `the definition has no tool "${input.toolName}"`);
    const argProblems = paramProblems(tool, input.params);
    if (argProblems.length > 0) throw new ValidationError('ARGUMENTS_INVALID', argProblems.join('; '));
    const configuration = await this.withStored(orgId, def.id, input.configuration);
    const cfgProblems = configProblems(def, configuration, true);
    if (cfgProblems.length > 0) throw new ValidationError('CONFIGURATION_INVALID', cfgProblems.join('; '));
    const inFlight = this.running.get(orgId) ?? 0;
    if (inFlight >= this.d.options.testsPerOrg)
      throw new HayError(
        'CAPACITY',
        `${inFlight} builder tests are running for this organization (HAY_BUILDER_TESTS_PER_ORG); retry when one finished`,
      );
    this.running.set(orgId, inFlight + 1);
    try {
      return await this.runTest(caller, def, tool, input.params, configuration, signal);
    } finally {
      const left = (this.running.get(orgId) ?? 1) - 1;
      if (left <= 0) this.running.delete(orgId);
      else this.running.set(orgId, left);
    }
  }

  /** `configuration` with each `{"set": true}` value replaced by the stored one (absent when none is stored). */
  private async withStored(
    orgId: string,
    pluginId: string,
    configuration: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const keep = Object.entries(configuration).filter(([, v]) => isSetMarker(v));
    if (keep.length === 0) return configuration;
    const stored = (await this.d.storedConfiguration(orgId, pluginId)) ?? {};
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(configuration)) {
      if (!isSetMarker(v)) out[k] = v;
      else if (stored[k] !== undefined) out[k] = stored[k];
    }
    return out;
  }

  private async runTest(
    caller: BuilderCaller,
    def: Definition,
    tool: Definition['tools'][number],
    params: Record<string, unknown>,
    configuration: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<BuilderTestResult> {
    const orgId = caller.organizationId;
    const network = networkOf(def);
    const guarded = createGuardedFetch({
      policy: this.d.policy,
      rules: {
        hosts: 'all' in network ? 'all' : network.hosts,
        label: `no-code plugin ${def.id} (org ${orgId})`,
      },
      // one byte over the test cap: the tool's own cap answers first, as an isError result
      maxResponseBytes: this.d.options.testMaxResponseBytes + 1,
      connectTimeoutMs: this.d.options.connectTimeoutMs,
      headersTimeoutMs: this.d.options.testTimeoutMs,
    });
    const audit = (outcome: 'ok' | 'error' | 'denied', details: Record<string, unknown>) =>
      this.d.audit.record({
        organizationId: orgId,
        actor: caller.actor,
        action: 'builder.test',
        pluginId: def.id,
        outcome,
        details: { tool: tool.name, ...details },
      });
    try {
      const outcome = await executeTool(
        tool,
        { config: configuration, params },
        {
          fetch: guarded.fetch as unknown as FetchFn,
          maxTimeoutMs: this.d.options.testTimeoutMs,
          maxResponseBytes: this.d.options.testMaxResponseBytes,
          ...(signal ? { signal } : {}),
          rethrow: (err) => egressRefusal(err, guarded.lastError) !== undefined,
        },
      );
      audit(outcome.result.isError ? 'error' : 'ok', {
        status: outcome.status,
        durationMs: outcome.durationMs,
      });
      return {
        status: outcome.status,
        durationMs: outcome.durationMs,
        result: outcome.result,
        request: outcome.request ? redact(outcome.request, secretValues(def, configuration)) : null,
      };
    } catch (err) {
      const refusal = egressRefusal(err, guarded.lastError);
      audit(refusal ? 'denied' : 'error', {
        code: refusal?.code ?? (isHayError(err) ? err.code : 'INTERNAL'),
      });
      if (refusal) throw refusal;
      throw err;
    } finally {
      await guarded.close();
    }
  }

  private parse(raw: unknown): Definition {
    const checked = validateDefinition(raw);
    if (!checked.ok) throw new DefinitionError(checked.problems);
    return checked.definition;
  }

  private async nextVersion(orgId: string, pluginId: string): Promise<string> {
    const current = this.d.registry.get(orgId, pluginId);
    const known = [...(await this.d.versions(orgId, pluginId).catch(() => [] as string[]))];
    if (current?.organizationId === orgId) known.push(current.version);
    const highest = known.filter((v) => semver.valid(v)).sort(semver.rcompare)[0];
    return highest ? (semver.inc(highest, 'patch') ?? '1.0.0') : '1.0.0';
  }
}

function isSetMarker(v: unknown): boolean {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { set?: unknown }).set === true &&
    Object.keys(v).length === 1
  );
}

/** The egress refusal behind `err` (thrown by the guarded fetch's connect), if that is what it is. */
function egressRefusal(err: unknown, last: EgressError | undefined): EgressError | undefined {
  if (err instanceof EgressError && err.code === 'EGRESS_DENIED') return err;
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof EgressError && cause.code === 'EGRESS_DENIED') return cause;
  return last?.code === 'EGRESS_DENIED' && err instanceof Error ? last : undefined;
}

function secretValues(def: Definition, config: Record<string, unknown>): string[] {
  return def.config
    .filter((f) => f.encrypted)
    .map((f) => config[f.name])
    .filter((v): v is string | number => (typeof v === 'string' && v.length >= 1) || typeof v === 'number')
    .map(String);
}

/** The request with every secret value (raw or percent-encoded) replaced by `[secret]`. */
function redact(req: RenderedRequest, secrets: readonly string[]): RenderedRequest {
  const forms = secrets.flatMap((s) => [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)]);
  const unique = [...new Set(forms)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
  const clean = (text: string) => unique.reduce((t, s) => t.split(s).join('[secret]'), text);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = clean(v);
  return {
    method: req.method,
    url: clean(req.url),
    headers,
    ...(req.body !== undefined ? { body: clean(req.body) } : {}),
  };
}

/** A folder made by the builder: its package.json names the runtime and it holds a plain definition file. */
async function isNoCodeFolder(dir: string): Promise<boolean> {
  try {
    const pkg = (await readJsonNoFollow(path.join(dir, 'package.json'))) as {
      peerDependencies?: Record<string, unknown>;
    };
    if (typeof pkg.peerDependencies?.[RUNTIME_PACKAGE] !== 'string') return false;
    return (await lstat(path.join(dir, DEFINITION_FILE))).isFile();
  } catch {
    return false;
  }
}

/** JSON of a plain file (never through a symlink: tenant folders are read). Bounded by the definition limit. */
async function readJsonNoFollow(file: string): Promise<unknown> {
  const st = await lstat(file);
  if (!st.isFile() || st.size > 1024 * 1024) throw new Error('not a plain file');
  return JSON.parse(await readFile(file, 'utf8'));
}
