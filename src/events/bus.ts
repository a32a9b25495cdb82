import type { AuditLog } from '../audit/audit-log.js';
import { isHayError, ValidationError } from '../errors.js';
import type { PluginService } from '../invocation/plugin-service.js';
import type { EventSubscription } from '../manifest/types.js';
import type { PluginRegistry } from '../registry/plugin-registry.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import type { EventsMetrics } from './metrics.js';
import type { Claimed, NewDelivery, OutboxStore } from './outbox.js';
import type { WebhookEndpoints } from './webhooks.js';
import { DeliveryFailure, type Deliverer } from './worker.js';

/** Type of the event an inbound route request becomes (delivered only to the route's own plugin). */
export const INBOUND_EVENT_TYPE = 'hay.route.request';

/** Who published: a plugin (platform API), an org API key, or an inbound route of a plugin. */
export type EventSource =
  { kind: 'plugin'; pluginId: string } | { kind: 'api'; actor: string } | { kind: 'route'; pluginId: string };

export interface PublishInput {
  type: string;
  payload: unknown;
  idempotencyKey?: string | undefined;
}

export interface PublishResult {
  eventId: string;
  /** True when the idempotency key was used before by the same source: nothing new is delivered. */
  duplicate: boolean;
  deliveries: number;
}

/** What a handler tool receives as its `event` argument. */
export interface EventEnvelope {
  id: string;
  type: string;
  source: string;
  organizationId: string;
  payload: unknown;
  publishedAt: string;
  /** The publisher's key, else the event id. */
  idempotencyKey: string;
  /** Stable across retries of this delivery: a handler that saw it before is seeing a duplicate. */
  deliveryId: string;
  attempt: number;
  /** True from the second attempt on: an earlier attempt may have been processed. */
  redelivery: boolean;
}

/** True when a subscription pattern (`type`, `prefix.*`, `*`) covers `type`. */
export function matchesEventType(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

function sourceString(s: EventSource): string {
  return s.kind === 'plugin' ? `plugin:${s.pluginId}` : s.kind === 'route' ? `route:${s.pluginId}` : s.actor;
}

/**
 * Accepts events of one organization into the outbox and decides who receives them: the org's enabled
 * plugins whose manifest subscribes to the type, and the org's webhook endpoints for it. Only that org's
 * plugins are ever targets (registry.list(orgId) is core + the org's own custom plugins).
 */
export class EventBus {
  constructor(
    private readonly d: {
      store: OutboxStore;
      registry: PluginRegistry;
      settings: PluginSettingsService;
      webhooks: WebhookEndpoints;
      metrics: EventsMetrics;
      audit: AuditLog;
      maxAttempts: number;
      /** Largest payload (JSON bytes) a publish may carry, whoever publishes. */
      maxPayloadBytes: number;
      /** Called after a commit that created deliveries (wakes the worker). */
      onAccepted: () => void;
    },
  ) {}

  async publish(orgId: string, source: EventSource, input: PublishInput): Promise<PublishResult> {
    const bytes = Buffer.byteLength(JSON.stringify(input.payload) ?? '');
    if (bytes > this.d.maxPayloadBytes)
      throw new ValidationError(
        'INPUT_INVALID',
        `payload is ${bytes} bytes; the limit is ${this.d.maxPayloadBytes}`,
      );
    const out = await this.d.store.accept(
      {
        organizationId: orgId,
        type: input.type,
        source: sourceString(source),
        payload: input.payload,
        idempotencyKey: input.idempotencyKey,
      },
      this.d.maxAttempts,
      () => this.targets(orgId, input.type),
    );
    if (!out.duplicate) this.d.metrics.accepted(source.kind);
    this.d.audit.record({
      organizationId: orgId,
      actor: sourceString(source),
      action: 'event.publish',
      pluginId: source.kind === 'api' ? null : source.pluginId,
      outcome: 'ok',
      details: {
        eventId: out.event.id,
        type: input.type,
        duplicate: out.duplicate,
        deliveries: out.deliveryIds.length,
      },
    });
    if (out.deliveryIds.length > 0 && !out.duplicate) this.d.onAccepted();
    return { eventId: out.event.id, duplicate: out.duplicate, deliveries: out.deliveryIds.length };
  }

  /** An inbound route request: one delivery, to `handler` of the route's own plugin. */
  async acceptInbound(
    orgId: string,
    pluginId: string,
    handler: string,
    payload: unknown,
    idempotencyKey: string | undefined,
  ): Promise<{ eventId: string; duplicate: boolean }> {
    const out = await this.d.store.accept(
      {
        organizationId: orgId,
        type: INBOUND_EVENT_TYPE,
        source: sourceString({ kind: 'route', pluginId }),
        payload,
        idempotencyKey,
      },
      this.d.maxAttempts,
      () => [{ targetKind: 'plugin', target: pluginId, handler }],
    );
    if (!out.duplicate) {
      this.d.metrics.accepted('route');
      this.d.onAccepted();
    }
    return { eventId: out.event.id, duplicate: out.duplicate };
  }

  /** Enabled plugins of `orgId` subscribed to `type`, with their subscription. */
  async subscribers(
    orgId: string,
    type?: string,
  ): Promise<{ pluginId: string; enabled: boolean; subscription: EventSubscription }[]> {
    const plugins = this.d.registry
      .list(orgId)
      .filter((p) => p.status === 'ok' && (p.manifest?.subscriptions?.length ?? 0) > 0);
    const enabled = await this.d.settings.enabledMap(
      orgId,
      plugins.map((p) => p.key),
    );
    const out: { pluginId: string; enabled: boolean; subscription: EventSubscription }[] = [];
    for (const p of plugins)
      for (const s of p.manifest?.subscriptions ?? [])
        if (type === undefined || s.events.some((e) => matchesEventType(e, type)))
          out.push({ pluginId: p.pluginId, enabled: enabled.get(p.key) ?? false, subscription: s });
    return out;
  }

  private async targets(orgId: string, type: string): Promise<NewDelivery[]> {
    const out: NewDelivery[] = [];
    const seen = new Set<string>();
    for (const s of await this.subscribers(orgId, type)) {
      if (!s.enabled || seen.has(s.pluginId)) continue;
      seen.add(s.pluginId);
      out.push({
        targetKind: 'plugin',
        target: s.pluginId,
        handler: s.subscription.handler,
        ...(s.subscription.ordered ? { orderingKey: `${orgId}:plugin:${s.pluginId}` } : {}),
      });
    }
    for (const e of await this.d.webhooks.matching(orgId, type))
      out.push({
        targetKind: 'webhook',
        target: e.id,
        ...(e.ordered ? { orderingKey: `${orgId}:webhook:${e.id}` } : {}),
      });
    return out;
  }
}

export function envelopeOf({ delivery, event }: Claimed): EventEnvelope {
  return {
    id: event.id,
    type: event.type,
    source: event.source,
    organizationId: event.organizationId,
    payload: event.payload,
    publishedAt: event.createdAt.toISOString(),
    idempotencyKey: event.idempotencyKey ?? event.id,
    deliveryId: delivery.id,
    attempt: delivery.attempts,
    redelivery: delivery.attempts > 1,
  };
}

/** Errors after which another attempt cannot succeed without someone changing something. */
const PERMANENT = new Set(['PLUGIN_NOT_FOUND', 'TOOL_NOT_FOUND', 'ARGUMENTS_INVALID', 'PERMISSION_DENIED']);

/**
 * Delivers to a plugin by calling its handler tool through the normal invocation path (visibility,
 * enablement, rate limits, validation, audit, metrics), as the delivery's organization. A tool result
 * with isError is a failed attempt.
 */
export function pluginDeliverer(plugins: Pick<PluginService, 'invokeTool'>): Deliverer {
  return async (claimed, signal) => {
    const { delivery } = claimed;
    const tool = delivery.handler ?? '';
    let result;
    try {
      result = await plugins.invokeTool(
        {
          organizationId: delivery.organizationId,
          actor: 'system:events',
          keyId: `events:${delivery.organizationId}`,
        },
        { pluginId: delivery.target, toolName: tool, arguments: { event: envelopeOf(claimed) } },
        signal,
      );
    } catch (err) {
      if (!isHayError(err)) throw err;
      throw new DeliveryFailure(`${err.code}: ${err.message}`, {
        permanent: PERMANENT.has(err.code),
        cause: err,
      });
    }
    if (result.isError) {
      const text = (result.content ?? [])
        .map((c) => (c && typeof c === 'object' && 'text' in c && typeof c.text === 'string' ? c.text : ''))
        .join(' ')
        .slice(0, 500);
      throw new DeliveryFailure(`handler ${tool} returned an error${text ? `: ${text}` : ''}`);
    }
  };
}
