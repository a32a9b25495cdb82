import type { Logger } from '../../logger.js';
import type { ConnectionEnd } from '../ports.js';

/** The message of a thrown value, whatever was thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Characters of a plugin's own error text carried into a host error (the rest is cut, and said so). */
export const MAX_PLUGIN_ERROR_CHARS = 2_000;

/**
 * A plugin's error text (its JSON-RPC error message, up to a whole 10 MB line) as a host error carries it
 * to callers, logs and the audit: at most MAX_PLUGIN_ERROR_CHARS characters, then how many were cut.
 */
export function pluginErrorText(text: string): string {
  if (text.length <= MAX_PLUGIN_ERROR_CHARS) return text;
  return `${text.slice(0, MAX_PLUGIN_ERROR_CHARS)}… (${text.length - MAX_PLUGIN_ERROR_CHARS} more characters cut)`;
}

/**
 * A connection's end and its listeners (PluginConnection.onEnd): the end is recorded once, logged, and
 * told to every listener; a listener added after it is told in a microtask. A listener that throws is
 * logged (`safely`), never propagated to the connection.
 */
export class ConnectionEnds {
  private current: ConnectionEnd | undefined;
  private readonly listeners: ((end: ConnectionEnd) => void)[] = [];

  constructor(private readonly logger: Logger) {}

  /** The end, once it happened. */
  get ended(): ConnectionEnd | undefined {
    return this.current;
  }

  onEnd(listener: (end: ConnectionEnd) => void): void {
    this.listeners.push(listener);
    const ended = this.current;
    if (ended) queueMicrotask(() => this.safely(() => listener(ended)));
  }

  /** Records `end` and tells the listeners; ignored once an end was recorded. */
  end(end: ConnectionEnd): void {
    if (this.current) return;
    this.current = end;
    this.logger.info({ end }, 'plugin connection ended');
    for (const listener of this.listeners) this.safely(() => listener(end));
  }

  /** Runs a listener; what it throws is logged. */
  safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err: errorText(err) }, 'plugin connection listener threw');
    }
  }
}
