import type { Logger } from '../../logger.js';
import type { ConnectionEnd } from '../ports.js';

/** The message of a thrown value, whatever was thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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
