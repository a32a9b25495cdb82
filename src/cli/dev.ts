import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import type { FSWatcher } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createHayClient, TRPCClientError, type HayClient } from '../api/client.js';
import { loadConfig } from '../config.js';
import { ManifestError } from '../errors.js';
import { createHost, type Host } from '../host.js';
import { createLogger } from '../logger.js';
import { MANIFEST_FILE } from '../manifest/load.js';
import type { HayPluginManifest } from '../manifest/types.js';
import { ManifestValidator, manifestSchemaPath } from '../manifest/validator.js';
import { packageRoot } from '../paths.js';

export interface DevIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Command lines (interactive mode); default process.stdin. */
  input?: NodeJS.ReadableStream;
}

const USAGE = `usage: hay-plugins dev <plugin-dir> [--config <file.json>] [--call <tool> [--args <json>]] [--debounce-ms <n>] [--verbose]`;
const COMMANDS = 'commands: tools | call <tool> [json arguments] | restart | quit';
/** Never copied into the served folder, nor watched. */
const SKIPPED = new Set(['node_modules', '.git']);

interface DevOptions {
  dir: string;
  configFile: string | undefined;
  call: { tool: string; args: Record<string, unknown> } | undefined;
  debounceMs: number;
  verbose: boolean;
}

/**
 * `hay-plugins dev <dir>`: validates the plugin, serves a copy of it from a private host (temp data and
 * plugins folders, embedded database, port 0, one organization with the plugin enabled), lists its tools,
 * then reads commands from stdin (`tools`, `call <tool> {json}`, `restart`, `quit`). A change in the folder
 * (debounced) re-validates, re-copies and restarts the plugin. Configuration: the JSON object in `--config`
 * (default `<dir>/hay-dev.config.json` when present), then every configSchema field whose `env` variable is
 * set in this process. Errors print as `error <CODE>: <message>` (a server that dies at start: its last
 * stderr lines). `--call` runs one call and exits (0 on success). The sandbox is off unless HAY_SANDBOX is
 * set; other HAY_* variables apply as for `serve`.
 */
export async function devCommand(args: readonly string[], io: DevIo): Promise<number> {
  const parsed = parseArgs(args);
  if (typeof parsed === 'string') {
    io.err(`${parsed}\n${USAGE}\n`);
    return 1;
  }
  const session = new DevSession(parsed, io);
  try {
    return await session.run();
  } finally {
    await session.close();
  }
}

function parseArgs(args: readonly string[]): DevOptions | string {
  let dir: string | undefined;
  let configFile: string | undefined;
  let tool: string | undefined;
  let rawArgs = '{}';
  let debounceMs = 300;
  let verbose = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--config') configFile = args[++i];
    else if (a === '--call') tool = args[++i];
    else if (a === '--args') rawArgs = args[++i] ?? '';
    else if (a === '--debounce-ms') debounceMs = Number(args[++i]);
    else if (a === '--verbose') verbose = true;
    else if (a !== undefined && !a.startsWith('--') && dir === undefined) dir = a;
    else return `unknown argument "${a ?? ''}"`;
  }
  if (dir === undefined) return 'name the plugin folder';
  if (!Number.isInteger(debounceMs) || debounceMs < 10 || debounceMs > 60_000)
    return '--debounce-ms must be an integer from 10 to 60000';
  let call: DevOptions['call'];
  if (tool !== undefined) {
    const parsedArgs = parseJsonObject(rawArgs);
    if (typeof parsedArgs === 'string') return `--args: ${parsedArgs}`;
    call = { tool, args: parsedArgs };
  }
  return { dir: path.resolve(dir), configFile, call, debounceMs, verbose };
}

function parseJsonObject(text: string): Record<string, unknown> | string {
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'must be a JSON object';
    return v as Record<string, unknown>;
  } catch (err) {
    return `not JSON (${err instanceof Error ? err.message : String(err)})`;
  }
}

class DevSession {
  private host: Host | undefined;
  private hay: HayClient | undefined;
  private root: string | undefined;
  private pluginId: string | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly validator = new ManifestValidator(manifestSchemaPath(path.join(packageRoot(), 'plugins')));

  constructor(
    private readonly o: DevOptions,
    private readonly io: DevIo,
  ) {}

  async run(): Promise<number> {
    const manifest = this.validate();
    if (!manifest && this.o.call) return 1;
    await this.startHost();
    if (manifest) await this.load(manifest);
    if (this.o.call) {
      if (!manifest) return 1;
      return (await this.callTool(this.o.call.tool, this.o.call.args)) ? 0 : 1;
    }
    this.watch();
    this.io.out(`watching ${this.o.dir} (${COMMANDS})\n`);
    return this.repl();
  }

  async close(): Promise<void> {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    await this.queue.catch(() => undefined);
    await this.host?.close();
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }

  /** The manifest, or undefined after printing every problem. */
  private validate(): HayPluginManifest | undefined {
    const file = path.join(this.o.dir, MANIFEST_FILE);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      this.io.err(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})\n`);
      return undefined;
    }
    try {
      const manifest = this.validator.parse(text, file);
      if (this.pluginId !== undefined && manifest.id !== this.pluginId) {
        this.io.err(
          `${file}: the id changed (${this.pluginId} -> ${manifest.id}); restart hay-plugins dev\n`,
        );
        return undefined;
      }
      this.io.out(`valid: ${manifest.id}@${manifest.version}\n`);
      return manifest;
    } catch (err) {
      if (err instanceof ManifestError) {
        this.io.err(`invalid:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
        return undefined;
      }
      throw err;
    }
  }

  private async startHost(): Promise<void> {
    this.root = mkdtempSync(path.join(os.tmpdir(), 'hay-dev-'));
    const pluginsDir = path.join(this.root, 'plugins');
    mkdirSync(path.join(pluginsDir, 'core'), { recursive: true });
    mkdirSync(path.join(pluginsDir, 'custom'), { recursive: true });
    const adminToken = `adm-dev-${Math.random().toString(36).slice(2)}`;
    const config = loadConfig(process.env, [], {
      host: '127.0.0.1',
      port: 0,
      dataDir: path.join(this.root, 'data'),
      pluginsDir,
      databaseUrl: undefined,
      adminToken,
      logLevel: this.o.verbose ? 'info' : 'silent',
      ...(process.env.HAY_SANDBOX ? {} : { sandbox: 'off' as const }),
      hotReload: 'off',
      warmupMaxInstances: 0,
    });
    const logger = createLogger({ level: config.logLevel, destination: process.stderr });
    this.host = await createHost(config, { logger });
    await this.host.start();
    const admin = createHayClient({ url: this.host.url, apiKey: adminToken });
    const org = await admin.admin.createOrganization.mutate({ name: 'dev' });
    this.hay = createHayClient({ url: this.host.url, apiKey: org.apiKey });
    this.io.out(`host: ${this.host.url} (organization ${org.organizationId})\n`);
  }

  /** Copies the folder in, rescans, (re)enables with the configuration and lists the tools. */
  private async load(manifest: HayPluginManifest): Promise<void> {
    const host = this.host;
    const hay = this.hay;
    if (!host || !hay || !this.root) return;
    const target = path.join(this.root, 'plugins', 'core', manifest.id);
    const first = this.pluginId === undefined;
    this.pluginId = manifest.id;
    rmSync(target, { recursive: true, force: true });
    cpSync(this.o.dir, target, {
      recursive: true,
      filter: (src) => !SKIPPED.has(path.basename(src)),
    });
    const modules = path.join(this.o.dir, 'node_modules');
    if (existsSync(modules)) symlinkSync(modules, path.join(target, 'node_modules'), 'dir');
    withoutDevDependencies(target);
    const key = host.services.registry.get(null, manifest.id)?.key;
    if (key !== undefined) await host.services.instances.stopAllForPlugin(key, 'plugin changed (dev)');
    await host.services.registry.scan();
    const configuration = this.configuration(manifest);
    if (configuration === undefined) return;
    try {
      if (first) await hay.plugins.enable.mutate({ pluginId: manifest.id, configuration });
      else await hay.plugins.configure.mutate({ pluginId: manifest.id, configuration });
    } catch (err) {
      this.printError(err);
      return;
    }
    if (!first) await this.printStageError(manifest.id);
    await this.listTools();
  }

  /**
   * A changed copy is staged and probed before it serves (src/lifecycle/versions.ts); when that failed the
   * previous copy keeps serving, so the cause is only in plugins.get: print it.
   */
  private async printStageError(pluginId: string): Promise<void> {
    const checksum = this.host?.services.registry.get(null, pluginId)?.checksum;
    const got = (await this.hay?.plugins.get.query({ pluginId }).catch(() => undefined)) as
      { versions?: { stageError?: { checksum: string; error: string } | null } } | undefined;
    const failed = got?.versions?.stageError;
    if (failed && failed.checksum === checksum)
      this.io.err(
        `error INSTANCE_FAILED: the changed plugin did not start; the previous copy keeps serving until a change fixes it: ${failed.error}\n`,
      );
  }

  /** `--config` / hay-dev.config.json, then configSchema fields' `env` variables of this process. */
  private configuration(manifest: HayPluginManifest): Record<string, unknown> | undefined {
    const file = this.o.configFile ?? path.join(this.o.dir, 'hay-dev.config.json');
    let values: Record<string, unknown> = {};
    if (this.o.configFile !== undefined || existsSync(file)) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        this.io.err(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})\n`);
        return undefined;
      }
      const parsed = parseJsonObject(text);
      if (typeof parsed === 'string') {
        this.io.err(`${file}: ${parsed}\n`);
        return undefined;
      }
      values = parsed;
    }
    for (const [name, field] of Object.entries(manifest.configSchema ?? {})) {
      const raw = field.env !== undefined ? process.env[field.env] : undefined;
      if (raw === undefined) continue;
      values[name] = field.type === 'number' ? Number(raw) : field.type === 'boolean' ? raw === 'true' : raw;
    }
    return values;
  }

  private async listTools(): Promise<boolean> {
    if (!this.hay || !this.pluginId) return false;
    try {
      const tools = await this.hay.plugins.listTools.query({ pluginId: this.pluginId });
      this.io.out(`tools: ${tools.map((t) => t.name).join(', ') || '(none)'}\n`);
      return true;
    } catch (err) {
      this.printError(err);
      return false;
    }
  }

  private async callTool(tool: string, args: Record<string, unknown>): Promise<boolean> {
    if (!this.hay || !this.pluginId) return false;
    try {
      const result = await this.hay.plugins.invokeTool.mutate({
        pluginId: this.pluginId,
        toolName: tool,
        arguments: args,
      });
      const content = (result.content ?? []) as { type: string; text?: string }[];
      const text = content.map((c) => (c.type === 'text' ? (c.text ?? '') : JSON.stringify(c))).join('\n');
      const structured = (result as { structuredContent?: unknown }).structuredContent;
      this.io.out(
        `${result.isError ? 'tool error' : 'result'}: ${text}${structured !== undefined && text === '' ? JSON.stringify(structured) : ''}\n`,
      );
      return result.isError !== true;
    } catch (err) {
      this.printError(err);
      return false;
    }
  }

  private printError(err: unknown): void {
    if (err instanceof TRPCClientError) {
      const data = err.data as { hayCode?: string; code?: string } | undefined;
      this.io.err(`error ${data?.hayCode ?? data?.code ?? 'ERROR'}: ${err.message}\n`);
    } else this.io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  }

  private watch(): void {
    try {
      this.watcher = watch(this.o.dir, { recursive: true }, (_event, name) => {
        const rel = typeof name === 'string' ? name : '';
        const top = rel.split(path.sep)[0] ?? '';
        if (SKIPPED.has(top) || rel.endsWith('package-lock.json')) return;
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => {
          this.timer = undefined;
          void this.enqueue(() => this.reload('changed'));
        }, this.o.debounceMs);
      });
    } catch (err) {
      this.io.err(
        `cannot watch ${this.o.dir} (${err instanceof Error ? err.message : String(err)}); use "restart"\n`,
      );
    }
  }

  private async reload(why: string): Promise<void> {
    this.io.out(`${why}: restarting\n`);
    const manifest = this.validate();
    if (manifest) await this.load(manifest);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private repl(): Promise<number> {
    const input = this.io.input ?? process.stdin;
    const rl = createInterface({ input, terminal: false });
    return new Promise<number>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        rl.close();
        process.off('SIGINT', finish);
        process.off('SIGTERM', finish);
        // an open stdin pipe would keep the process alive after the host closed
        if (input === process.stdin) process.stdin.destroy();
        resolve(0);
      };
      process.on('SIGINT', finish);
      process.on('SIGTERM', finish);
      rl.on('close', finish);
      rl.on('line', (line) => {
        const trimmed = line.trim();
        const [cmd = '', ...rest] = trimmed.split(/\s+/);
        if (cmd === '') return;
        if (cmd === 'quit' || cmd === 'exit') return finish();
        void this.enqueue(async () => {
          if (cmd === 'tools') await this.listTools();
          else if (cmd === 'restart') await this.reload('restart');
          else if (cmd === 'call' && rest[0]) {
            const json = trimmed.slice(trimmed.indexOf(rest[0]) + rest[0].length).trim() || '{}';
            const args = parseJsonObject(json);
            if (typeof args === 'string') this.io.err(`arguments ${args}\n`);
            else await this.callTool(rest[0], args);
          } else this.io.err(`unknown command "${trimmed}"; ${COMMANDS}\n`);
        });
      });
    });
  }
}

/** Like the SDK test harness: devDependencies serve the author's tests, not the served copy. */
function withoutDevDependencies(dir: string): void {
  const file = path.join(dir, 'package.json');
  if (!existsSync(file)) return;
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as {
    devDependencies?: unknown;
    scripts?: { build?: unknown };
  };
  if (pkg.devDependencies === undefined || pkg.scripts?.build !== undefined) return;
  delete pkg.devDependencies;
  writeFileSync(file, JSON.stringify(pkg, null, 2));
}
