import type { ConnectionEnd } from '../ports.js';

/** Why a connection ended, for a person: exit code, signal or sandbox limit. */
export function describeEnd(end: ConnectionEnd): string {
  switch (end.kind) {
    case 'closed':
      return 'the plugin closed its connection';
    case 'error':
      return `connection error: ${end.message}`;
    case 'exited': {
      if (end.limit) return `killed by the sandbox ${end.limit} limit${end.signal ? ` (${end.signal})` : ''}`;
      if (end.signal) return `killed by signal ${end.signal}`;
      return `exited with code ${end.code ?? 'unknown'}`;
    }
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
