import { pino, type Logger, type LoggerOptions } from 'pino';

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

export function createLogger(options: { level: string; destination?: NodeJS.WritableStream }): Logger {
  const opts: LoggerOptions = {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { svc: 'hay' },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
