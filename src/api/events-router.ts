import { z } from 'zod';
import { DELIVERY_STATUSES } from '../events/delivery-state.js';
import { eventPayload, eventType, idempotencyKey } from '../platform/events-api.js';
import { LIMITS, pluginId, uuid } from './inputs.js';
import { orgAdminProcedure, orgProcedure, router } from './trpc.js';

const eventPattern = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^(\*|[a-z0-9]+([._-][a-z0-9]+)*(\.\*)?)$/,
    'must be an event type, a prefix ending in ".*", or "*"',
  );

/** Edge validation of the events procedures. */
export const eventsInputs = {
  createEndpoint: z.object({
    url: z.url().max(2000),
    eventTypes: z.array(eventPattern).min(1).max(50),
    description: z.string().max(500).optional(),
    ordered: z.boolean().optional(),
  }),
  endpointRef: z.object({ endpointId: uuid }),
  rotateEndpointSecret: z.object({
    endpointId: uuid,
    /** The old secret keeps signing (a second v1) this long; 0 = replaced at once. */
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .default(0),
  }),
  deliveries: z.object({
    status: z.enum(DELIVERY_STATUSES as [string, ...string[]]).optional(),
    targetKind: z.enum(['plugin', 'webhook']).optional(),
    target: z.string().max(255).optional(),
    cursor: z.number().int().positive().optional(),
    limit: z.number().int().min(1).max(500).default(50),
  }),
  deliveryRef: z.object({ deliveryId: uuid }),
  publish: z.object({
    type: eventType,
    // an outer bound at the edge; the event bus enforces the configured eventsMaxPayloadBytes
    payload: eventPayload(LIMITS.argumentBytes).default(null),
    idempotencyKey: idempotencyKey.optional(),
  }),
  routeRef: z.object({
    pluginId,
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
    path: z.string().startsWith('/').max(500),
  }),
};

/** `events.*`: subscriptions, inbound routes, webhook endpoints, deliveries of the caller's organization. */
export const eventsRouter = router({
  subscriptions: orgProcedure.query(({ ctx }) =>
    ctx.services.events.listSubscriptions(ctx.caller.organizationId),
  ),
  routes: orgProcedure.query(({ ctx }) => ctx.services.events.listRoutes(ctx.caller.organizationId)),
  endpoints: orgProcedure.query(({ ctx }) => ctx.services.events.listEndpoints(ctx.caller.organizationId)),
  createEndpoint: orgAdminProcedure
    .input(eventsInputs.createEndpoint)
    .mutation(({ ctx, input }) => ctx.services.events.createEndpoint(ctx.caller, input)),
  deleteEndpoint: orgAdminProcedure
    .input(eventsInputs.endpointRef)
    .mutation(({ ctx, input }) => ctx.services.events.deleteEndpoint(ctx.caller, input.endpointId)),
  rotateEndpointSecret: orgAdminProcedure
    .input(eventsInputs.rotateEndpointSecret)
    .mutation(({ ctx, input }) =>
      ctx.services.events.rotateEndpointSecret(ctx.caller, input.endpointId, input.graceSeconds),
    ),
  rotateRouteSecret: orgAdminProcedure
    .input(eventsInputs.routeRef)
    .mutation(({ ctx, input }) => ctx.services.events.rotateRouteSecret(ctx.caller, input)),
  deliveries: orgProcedure.input(eventsInputs.deliveries).query(({ ctx, input }) =>
    ctx.services.events.listDeliveries(ctx.caller.organizationId, {
      ...input,
      status: input.status as (typeof DELIVERY_STATUSES)[number] | undefined,
    }),
  ),
  delivery: orgProcedure
    .input(eventsInputs.deliveryRef)
    .query(({ ctx, input }) => ctx.services.events.getDelivery(ctx.caller.organizationId, input.deliveryId)),
  replay: orgAdminProcedure
    .input(eventsInputs.deliveryRef)
    .mutation(({ ctx, input }) => ctx.services.events.replay(ctx.caller, input.deliveryId)),
  publish: orgAdminProcedure
    .input(eventsInputs.publish)
    .mutation(({ ctx, input }) => ctx.services.events.publish(ctx.caller, input)),
});
