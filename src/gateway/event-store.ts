import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';
import { approxBytes } from '../runtime/json-size.js';

/**
 * The resumption store of one 2025-11-25 `/mcp` session (the SDK's EventStore): the last `maxEvents`
 * messages sent on its SSE streams, together at most `maxBytes` (approxBytes), so a client reconnecting
 * with `Last-Event-ID` gets what it missed on that stream. Older events are dropped; a message larger
 * than `maxBytes` on its own gets an id but is not kept; a Last-Event-ID older than the kept window
 * replays what is kept after it. Event ids are `<streamId>_<sequence>`; memory only (a session lives
 * on one host node).
 */
export class BoundedEventStore implements EventStore {
  private readonly events = new Map<string, { streamId: string; message: JSONRPCMessage; bytes: number }>();
  private sequence = 0;
  private bytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.events.size;
  }

  /** Approximate bytes of the messages kept. */
  get keptBytes(): number {
    return this.bytes;
  }

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${++this.sequence}`;
    const bytes = approxBytes(message);
    if (bytes > this.maxBytes) return Promise.resolve(id);
    this.events.set(id, { streamId, message, bytes });
    this.bytes += bytes;
    while (this.events.size > this.maxEvents || this.bytes > this.maxBytes) {
      const oldest = this.events.entries().next();
      if (oldest.done) break;
      this.events.delete(oldest.value[0]);
      this.bytes -= oldest.value[1].bytes;
    }
    return Promise.resolve(id);
  }

  getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return Promise.resolve(this.events.get(eventId)?.streamId ?? streamOf(eventId));
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const streamId = this.events.get(lastEventId)?.streamId ?? streamOf(lastEventId) ?? '';
    const after = sequenceOf(lastEventId);
    for (const [id, e] of [...this.events]) {
      if (e.streamId === streamId && sequenceOf(id) > after) await send(id, e.message);
    }
    return streamId;
  }
}

function streamOf(eventId: string): string | undefined {
  const i = eventId.lastIndexOf('_');
  return i > 0 ? eventId.slice(0, i) : undefined;
}

function sequenceOf(eventId: string): number {
  const n = Number(eventId.slice(eventId.lastIndexOf('_') + 1));
  return Number.isFinite(n) ? n : Number.MAX_SAFE_INTEGER;
}
