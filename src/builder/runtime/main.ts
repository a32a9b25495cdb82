// The no-code runtime: trusted host code, offered to no-code plugins as the host package
// `@hay/no-code-runtime` (src/builder/wiring.ts) and started as `node node_modules/@hay/no-code-runtime/
// runtime/main.js` in the plugin's folder, inside the sandbox like any custom plugin. The definition
// it serves (hay-no-code.json in that folder) is tenant data and is validated again here. stdout carries
// MCP; diagnostics go to stderr. Imports nothing from the host outside src/builder.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { EnvHttpProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici';
import {
  DEFINITION_FILE,
  DEFINITION_LIMITS,
  inputSchemaOf,
  validateDefinition,
} from '../engine/definition.js';
import { configFromEnv, executeTool, paramProblems, type FetchFn } from '../engine/execute.js';

async function main(): Promise<void> {
  const file = path.join(process.cwd(), DEFINITION_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`no-code runtime: cannot read ${DEFINITION_FILE}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const checked = validateDefinition(raw);
  if (!checked.ok) {
    for (const p of checked.problems)
      process.stderr.write(`no-code runtime: ${DEFINITION_FILE}${p.pointer} ${p.message}\n`);
    process.exit(1);
  }
  const def = checked.definition;
  const config = configFromEnv(def, process.env);
  // the host routes this plugin's traffic through its egress proxy (HTTP_PROXY/HTTPS_PROXY)
  let dispatcher: Dispatcher | undefined;
  // plain http:// goes as a forward-proxy request (no CONNECT), so a refusal arrives as the proxy's own 403
  if (process.env.HTTP_PROXY || process.env.HTTPS_PROXY)
    dispatcher = new EnvHttpProxyAgent({
      // undici 6 accepts it (ProxyAgent's option) but its EnvHttpProxyAgent types omit it
      proxyTunnel: false,
    } as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
  const send: FetchFn = (url, init) =>
    undiciFetch(url, { ...init, ...(dispatcher ? { dispatcher } : {}) }) as unknown as Promise<Response>;

  const version = await readFile(path.join(process.cwd(), 'manifest.json'), 'utf8').then(
    (text) => String((JSON.parse(text) as { version?: unknown }).version ?? '0.0.0'),
    () => '0.0.0',
  );
  const server = new Server({ name: def.id, version }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: def.tools.map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: inputSchemaOf(t),
    })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const tool = def.tools.find((t) => t.name === req.params.name);
    if (!tool) return { isError: true, content: [{ type: 'text', text: `unknown tool ${req.params.name}` }] };
    const params = req.params.arguments ?? {};
    const problems = paramProblems(tool, params);
    if (problems.length > 0) return { isError: true, content: [{ type: 'text', text: problems.join('; ') }] };
    const outcome = await executeTool(
      tool,
      { config, params },
      {
        fetch: send,
        maxTimeoutMs: DEFINITION_LIMITS.timeoutMs,
        maxResponseBytes: DEFINITION_LIMITS.responseBytes,
        signal: extra.signal,
      },
    );
    return { ...outcome.result };
  });
  await server.connect(new StdioServerTransport());
  const stop = () => void server.close().finally(() => process.exit(0));
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
}

await main();
