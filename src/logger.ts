import { pino, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** Keys whose values are never written to logs, at any depth pino checks. */
export const REDACT_PATHS = [
  'configuration',
  '*.configuration',
  'secret',
  '*.secret',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'password',
  '*.password',
];

/**
 * JSON lines to `destination` (default stdout); with `pretty`, colored human-readable lines (pino-pretty,
 * synchronous, same redaction) instead.
 */
export function createLogger(options: {
  level: string;
  destination?: NodeJS.WritableStream;
  pretty?: boolean;
}): Logger {
  const opts: LoggerOptions = {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { svc: 'hay' },
  };
  if (options.pretty)
    return pino(
      opts,
      pretty({
        colorize: true,
        sync: true,
        ignore: 'pid,hostname,svc',
        translateTime: 'SYS:HH:MM:ss.l',
        ...(options.destination ? { destination: options.destination } : {}),
      }),
    );
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** Whether `format` means pretty output on this stdout. */
export function wantsPrettyLogs(
  format: 'auto' | 'json' | 'pretty',
  stdout: { isTTY?: boolean } = process.stdout,
): boolean {
  return format === 'pretty' || (format === 'auto' && stdout.isTTY === true);
}
