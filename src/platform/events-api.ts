import { z } from 'zod';
import type { EventBus } from '../events/bus.js';
import { method, type PlatformApi } from './platform-api.js';

/** Event type names: lowercase words joined by '.', '_' or '-' (ticket.created). */
export const eventType = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^[a-z0-9]+([._-][a-z0-9]+)*$/,
    'must be lowercase words joined by ".", "_" or "-", e.g. ticket.created',
  );

/** Payload: any JSON value of at most `maxBytes` serialized. */
export function eventPayload(maxBytes: number) {
  return z.unknown().superRefine((v, ctx) => {
    let text: string | undefined;
    try {
      text = JSON.stringify(v);
    } catch (err) {
      // nesting deeper than the stack (JSON.parse takes it, JSON.stringify does not)
      if (!(err instanceof RangeError)) throw err;
      ctx.addIssue({ code: 'custom', message: 'payload nests too deeply to be serialized' });
      return;
    }
    if (text === undefined) ctx.addIssue({ code: 'custom', message: 'payload must be a JSON value' });
    else if (Buffer.byteLength(text) > maxBytes)
      ctx.addIssue({
        code: 'custom',
        message: `payload is ${Buffer.byteLength(text)} bytes; the limit is ${maxBytes}`,
      });
  });
}

export const idempotencyKey = z.string().min(1).max(200);

/**
 * Platform API `events`: `POST /v1/platform/events/publish {type, payload, idempotencyKey?}` publishes an
 * event in the calling plugin's organization (never another's: the org comes from the verified token).
 * Answers `{eventId, duplicate, deliveries}`; a repeated idempotency key answers the first event's id
 * with `duplicate: true` and delivers nothing again.
 */
export function createEventsApi(options: { bus: EventBus; maxPayloadBytes: number }): PlatformApi {
  const input = z.object({
    type: eventType,
    payload: eventPayload(options.maxPayloadBytes).default(null),
    idempotencyKey: idempotencyKey.optional(),
  });
  return {
    name: 'events',
    methods: {
      publish: method(input, async (i, ctx) => {
        const out = await options.bus.publish(
          ctx.orgId,
          { kind: 'plugin', pluginId: ctx.pluginId },
          { type: i.type, payload: i.payload ?? null, idempotencyKey: i.idempotencyKey },
        );
        return { ...out };
      }),
    },
  };
}
