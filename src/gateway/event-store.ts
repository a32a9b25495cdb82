import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';

/**
 * The resumption store of one 2025-11-25 `/mcp` session (the SDK's EventStore): the last `maxEvents`
 * messages sent on its SSE streams, so a client reconnecting with `Last-Event-ID` gets what it missed
 * on that stream. Older events are dropped; a Last-Event-ID older than the kept window replays nothing.
 * Event ids are `<streamId>_<sequence>`; memory only (a session lives on one host node).
 */
export class BoundedEventStore implements EventStore {
  private readonly events = new Map<string, { streamId: string; message: JSONRPCMessage }>();
  private sequence = 0;

  constructor(private readonly maxEvents: number) {}

  get size(): number {
    return this.events.size;
  }

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${++this.sequence}`;
    this.events.set(id, { streamId, message });
    while (this.events.size > this.maxEvents) {
      const oldest = this.events.keys().next();
      if (oldest.done) break;
      this.events.delete(oldest.value);
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
