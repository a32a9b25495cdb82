import { describeConfig, loadConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { createHost } from '../host.js';
import { createLogger, wantsPrettyLogs } from '../logger.js';
import { devCommand } from './dev.js';
import { newPluginCommand } from './new-plugin.js';
import { validateCommand } from './validate.js';

const HELP = `hay-plugins: multi-tenant plugin host for MCP tools

Usage:
  hay-plugins serve [--flag value ...]   start the host (HTTP API on HAY_HOST:HAY_PORT)
  hay-plugins validate <dir> [...]       check a plugin folder, or every plugin in a tree; exit 1 on errors
  hay-plugins new <name> [--template stdio|remote|http-api] [--dir <parent>]
                                         write a plugin (SDK server + test) that validates and passes its test
  hay-plugins dev <dir> [--config <file.json>] [--call <tool> [--args <json>]]
                                         serve one plugin from a private host, restart it on change, and call
                                         its tools from the terminal (tools | call <tool> {json} | restart | quit)
  hay-plugins rotate-key [--flag ...]    re-encrypt every stored secret with a new key
  hay-plugins --help                     this text

Configuration (environment variable, flag, default):
`;

type Out = { out: (s: string) => void; err: (s: string) => void };

/** Runs the CLI; resolves to the process exit code (serve resolves when the host has stopped). */
export async function main(
  argv: readonly string[],
  io: Out = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) },
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(HELP);
    for (const c of describeConfig())
      io.out(`  ${c.env.padEnd(36)} ${c.flag.padEnd(36)} ${String(c.default ?? '(unset)')}\n`);
    return command === undefined ? 1 : 0;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(rest, io);
      case 'validate':
        return await validateCommand(rest, io);
      case 'new':
        return await newPluginCommand(rest, io);
      case 'dev':
        return await devCommand(rest, io);
      case 'rotate-key':
        return await rotateKey(rest, io);
      default:
        io.err(`unknown command "${command}"; see hay-plugins --help\n`);
        return 1;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

async function serve(args: readonly string[], io: Out): Promise<number> {
  const config = loadConfig(process.env, args);
  const logger = createLogger({ level: config.logLevel, pretty: wantsPrettyLogs(config.logFormat) });
  const host = await createHost(config, { logger });
  // Node's default ends the process on an unhandled rejection: every organization's calls with it. A
  // rejection nobody awaited is a bug in one piece of work, logged (and visible in the log), not a stop.
  const onRejection = (reason: unknown) => logger.error({ err: reason }, 'unhandled promise rejection');
  process.on('unhandledRejection', onRejection);
  let stopping = false;
  const done = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void host.close().then(resolve, (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    // `on`, not `once`: a signal may arrive twice (e.g. to the process group and forwarded by `npm start`);
    // a repeated signal must not fall back to the default action and kill the host mid-shutdown.
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  try {
    await host.start();
  } catch (err) {
    logger.fatal({ err }, 'host failed to start');
    await host.close();
    process.off('unhandledRejection', onRejection);
    io.err(`hay-plugins: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  await done;
  process.off('unhandledRejection', onRejection);
  return 0;
}

async function rotateKey(args: readonly string[], io: Out): Promise<number> {
  const config = loadConfig(process.env, args);
  const logger = createLogger({ level: 'warn' });
  const host = await createHost({ ...config, port: 0 }, { logger });
  try {
    const result = await host.rotateKeys();
    io.out(`re-encrypted ${result.reencrypted} secret value(s); current key ${result.keyId}\n`);
    return 0;
  } finally {
    await host.close();
  }
}
