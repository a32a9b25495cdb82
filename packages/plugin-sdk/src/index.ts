/**
 * @hay/plugin-sdk: write a Hay plugin's MCP server in a few lines.
 *
 *   await definePlugin({
 *     name: 'greeter', version: '1.0.0',
 *     config: { greeting: { type: 'string', env: 'GREETING', default: 'Hello' } },
 *     platform: ['email'],
 *   })
 *     .tool('greet', { description: 'Greets', input: { name: z.string() } },
 *       async ({ name }, ctx) => `${ctx.config.greeting}, ${name}`)
 *     .run();
 *
 * `config` mirrors the manifest's configSchema (same names, types and env names): `ctx.config` is typed
 * from it and read from the environment the host sets. `platform` lists the manifest's permissions.api:
 * `ctx.platform` offers exactly those. Logs go to stderr (stdout carries MCP).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

export { z };
export type { CallToolResult };
export { httpFetch, serveHttp, type HttpAnswer, type HttpServing } from './http.js';
import { serveHttp, type HttpServing } from './http.js';

// ---- configuration ----------------------------------------------------------------------------------

/** One configSchema field, as in manifest.json. */
export type ConfigFieldSpec =
  | { type: 'string' | 'url'; env: string; required?: boolean; default?: string; encrypted?: boolean }
  | { type: 'number'; env: string; required?: boolean; default?: number }
  | { type: 'boolean'; env: string; required?: boolean; default?: boolean }
  | { type: 'select'; env: string; options: readonly string[]; required?: boolean; default?: string };

export type ConfigSpec = Record<string, ConfigFieldSpec>;

type FieldValue<F extends ConfigFieldSpec> = F extends { type: 'number' }
  ? number
  : F extends { type: 'boolean' }
    ? boolean
    : F extends { type: 'select'; options: readonly (infer O)[] }
      ? O
      : string;

type IsSet<F> = F extends { required: true } ? true : F extends { default: unknown } ? true : false;

/** The typed configuration: required fields and fields with a default are always present. */
export type ConfigValues<C extends ConfigSpec> = {
  [K in keyof C as IsSet<C[K]> extends true ? K : never]: FieldValue<C[K]>;
} & {
  [K in keyof C as IsSet<C[K]> extends true ? never : K]?: FieldValue<C[K]>;
};

/** Reads `config` from `env`; throws an Error naming the field for a missing or malformed value. */
export function readConfig<C extends ConfigSpec>(config: C, env: NodeJS.ProcessEnv): ConfigValues<C> {
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(config)) {
    const raw = env[field.env];
    if (raw === undefined || raw === '') {
      if (field.default !== undefined) out[name] = field.default;
      else if (field.required)
        throw new Error(`configuration field "${name}" (${field.env}) is required but not set`);
      continue;
    }
    if (field.type === 'number') {
      const n = Number(raw);
      if (!Number.isFinite(n))
        throw new Error(`configuration field "${name}" (${field.env}) is not a number`);
      out[name] = n;
    } else if (field.type === 'boolean') out[name] = raw === 'true';
    else if (field.type === 'select' && !field.options.includes(raw))
      throw new Error(
        `configuration field "${name}" (${field.env}) must be one of ${field.options.join(', ')}`,
      );
    else out[name] = raw;
  }
  return out as ConfigValues<C>;
}

// ---- platform APIs ------------------------------------------------------------------------------------

export interface EmailSendInput {
  to: string | string[];
  subject: string;
  text: string;
  html?: string;
}

/** Every platform API the host offers, by its permissions.api name. */
export interface PlatformApis {
  email: { send(input: EmailSendInput): Promise<{ messageId: string; accepted: string[] }> };
}
export type PlatformApiName = keyof PlatformApis;

/** A platform API call answered with an error: `code` is the host's error code (docs/PLUGIN_API.md). */
export class PlatformApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'PlatformApiError';
  }
}

/** A client with exactly the APIs in `apis`, over HAY_API_URL / HAY_API_TOKEN. */
export function platformClient<const P extends readonly PlatformApiName[]>(
  apis: P,
  env: NodeJS.ProcessEnv,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Pick<PlatformApis, P[number]> {
  const call = async (api: string, method: string, body: unknown): Promise<unknown> => {
    const base = env.HAY_API_URL;
    const token = env.HAY_API_TOKEN;
    if (!base || !token)
      throw new PlatformApiError(
        'UNAUTHORIZED',
        'HAY_API_URL / HAY_API_TOKEN are not set (not started by a Hay host?)',
        0,
      );
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 15_000);
    const response = await fetch(`${base.replace(/\/+$/, '')}/v1/platform/${api}/${method}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      redirect: 'error',
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
    const parsed = (await response.json().catch(() => ({}))) as {
      error?: { code?: string; message?: string };
    };
    if (!response.ok)
      throw new PlatformApiError(
        parsed.error?.code ?? 'INTERNAL',
        parsed.error?.message ?? `HTTP ${response.status}`,
        response.status,
      );
    return parsed;
  };
  const all: PlatformApis = {
    email: { send: (input) => call('email', 'send', input) as ReturnType<PlatformApis['email']['send']> },
  };
  const out: Partial<PlatformApis> = {};
  for (const name of apis) Object.assign(out, { [name]: all[name] });
  return out as Pick<PlatformApis, P[number]>;
}

// ---- logging ------------------------------------------------------------------------------------------

export interface PluginLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** One line per entry on stderr (the host logs it with the organization and plugin). */
export function stderrLogger(write: (line: string) => void = (l) => process.stderr.write(l)): PluginLogger {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    write(`${level}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

// ---- tools and plugins --------------------------------------------------------------------------------

export interface ToolContext<C extends ConfigSpec, P extends readonly PlatformApiName[]> {
  config: ConfigValues<C>;
  platform: Pick<PlatformApis, P[number]>;
  log: PluginLogger;
  /** Fires when the host cancels the call (deadline or caller gone). */
  signal: AbortSignal;
  orgId: string;
}

/** What a handler may return: text, a JSON object (sent as text and structuredContent), or a CallToolResult. */
export type ToolReturn = string | CallToolResult | Record<string, unknown>;

export type ToolHandler<
  S extends z.ZodRawShape,
  C extends ConfigSpec,
  P extends readonly PlatformApiName[],
> = (args: z.infer<z.ZodObject<S>>, ctx: ToolContext<C, P>) => Promise<ToolReturn> | ToolReturn;

export interface PluginDefinition<C extends ConfigSpec, P extends readonly PlatformApiName[]> {
  name: string;
  version: string;
  /** The manifest's configSchema fields the code reads (same names, types and env names). */
  config?: C;
  /** The manifest's permissions.api. */
  platform?: P;
}

export interface DefinedPlugin<C extends ConfigSpec, P extends readonly PlatformApiName[]> {
  readonly definition: PluginDefinition<C, P>;
  /** Adds a tool; `input` is its argument schema as zod fields (listed as JSON Schema, validated by the SDK). */
  tool<S extends z.ZodRawShape>(
    name: string,
    options: { description?: string; input: S },
    handler: ToolHandler<S, C, P>,
  ): DefinedPlugin<C, P>;
  /** Tool names added so far. */
  toolNames(): string[];
  /** Builds the MCP server from `env` (tests connect their own transport). Throws on bad configuration. */
  createServer(env?: NodeJS.ProcessEnv): McpServer;
  /** Serves MCP over stdio until the host closes stdin or sends SIGTERM; exits 1 with a message on bad config. */
  run(): Promise<void>;
  /** Serves MCP over Streamable HTTP at `/mcp` (a remote plugin's own server); port 0 picks a free one. */
  serveHttp(options?: { port?: number; host?: string; env?: NodeJS.ProcessEnv }): Promise<HttpServing>;
}

function toResult(value: ToolReturn): CallToolResult {
  if (typeof value === 'string') return { content: [{ type: 'text', text: value }] };
  if (Array.isArray((value as CallToolResult).content)) return value as CallToolResult;
  return {
    content: [{ type: 'text', text: JSON.stringify(value) }],
    structuredContent: value as Record<string, unknown>,
  };
}

interface ToolEntry {
  name: string;
  description?: string;
  input: z.ZodRawShape;
  handler: (args: Record<string, unknown>, ctx: never) => Promise<ToolReturn> | ToolReturn;
}

export function definePlugin<
  const C extends ConfigSpec = Record<never, never>,
  const P extends readonly PlatformApiName[] = [],
>(definition: PluginDefinition<C, P>): DefinedPlugin<C, P> {
  const tools: ToolEntry[] = [];
  const createServer = (env: NodeJS.ProcessEnv = process.env): McpServer => {
    const config = readConfig(definition.config ?? ({} as C), env);
    const log = stderrLogger();
    const server = new McpServer({ name: definition.name, version: definition.version });
    for (const t of tools) {
      server.registerTool(
        t.name,
        { ...(t.description !== undefined ? { description: t.description } : {}), inputSchema: t.input },
        async (args: Record<string, unknown>, extra: { signal: AbortSignal }) => {
          const ctx: ToolContext<C, P> = {
            config,
            platform: platformClient((definition.platform ?? []) as P, env, { signal: extra.signal }),
            log,
            signal: extra.signal,
            orgId: env.HAY_ORG_ID ?? '',
          };
          try {
            return toResult(await t.handler(args, ctx as never));
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            log.error(`tool ${t.name} failed`, { error: message });
            return { isError: true, content: [{ type: 'text', text: message }] };
          }
        },
      );
    }
    return server;
  };
  const plugin: DefinedPlugin<C, P> = {
    definition,
    tool(name, options, handler) {
      if (tools.some((t) => t.name === name)) throw new Error(`tool "${name}" is defined twice`);
      tools.push({ name, ...options, handler: handler as unknown as ToolEntry['handler'] });
      return plugin;
    },
    toolNames: () => tools.map((t) => t.name),
    createServer,
    serveHttp: (options = {}) => {
      const env = options.env ?? process.env;
      createServer(env); // bad configuration fails here, not per request
      return serveHttp(() => createServer(env), options);
    },
    async run() {
      let server: McpServer;
      try {
        server = createServer();
      } catch (err) {
        process.stderr.write(`${definition.name}: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      }
      await server.connect(new StdioServerTransport());
      const stop = (): void => {
        void server.close().finally(() => process.exit(0));
      };
      process.stdin.on('end', stop);
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    },
  };
  return plugin;
}
