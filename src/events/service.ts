import type { AuditLog } from '../audit/audit-log.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Caller } from '../invocation/plugin-service.js';
import type { HttpMethod } from '../manifest/types.js';
import type { PluginRegistry } from '../registry/plugin-registry.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import type { EventBus, PublishInput, PublishResult } from './bus.js';
import type { DeliveryStatus } from './delivery-state.js';
import { routeKey, servedRoutes, type RouteSecrets } from './inbound.js';
import type { DeliveryView, OutboxStore } from './outbox.js';
import type { EndpointView, NewEndpoint, WebhookEndpoints } from './webhooks.js';

export interface SubscriptionView {
  pluginId: string;
  enabled: boolean;
  events: string[];
  handler: string;
  ordered: boolean;
}

export interface RouteView {
  pluginId: string;
  enabled: boolean;
  method: HttpMethod;
  path: string;
  handler: string;
  url: string;
  scheme: string;
  /** false: host-generated secret not created yet (rotateRouteSecret); null: the secret is a plugin setting. */
  hasSecret: boolean | null;
}

/** What the API layer (src/api/events-router.ts) calls. Every method is scoped to the caller's org. */
export class EventsService {
  constructor(
    private readonly d: {
      bus: EventBus;
      store: OutboxStore;
      webhooks: WebhookEndpoints;
      routeSecrets: RouteSecrets;
      registry: PluginRegistry;
      settings: PluginSettingsService;
      audit: AuditLog;
      /** Public base URL of the host, for inbound route URLs. */
      publicUrl: () => string;
      afterReplay: () => void;
    },
  ) {}

  async listSubscriptions(orgId: string): Promise<SubscriptionView[]> {
    return (await this.d.bus.subscribers(orgId)).map((s) => ({
      pluginId: s.pluginId,
      enabled: s.enabled,
      events: s.subscription.events,
      handler: s.subscription.handler,
      ordered: s.subscription.ordered ?? false,
    }));
  }

  async listRoutes(orgId: string): Promise<RouteView[]> {
    const plugins = this.d.registry
      .list(orgId)
      .filter((p) => p.status === 'ok' && servedRoutes(p).length > 0);
    const enabled = await this.d.settings.enabledMap(
      orgId,
      plugins.map((p) => p.key),
    );
    const out: RouteView[] = [];
    for (const p of plugins)
      for (const r of servedRoutes(p)) {
        const fromConfig = r.auth?.secretConfigField !== undefined;
        out.push({
          pluginId: p.pluginId,
          enabled: enabled.get(p.key) ?? false,
          method: r.method,
          path: r.path,
          handler: r.handler,
          url: `${this.d.publicUrl()}/v1/hooks/${orgId}/${p.pluginId}${r.path}`,
          scheme: r.auth?.scheme ?? 'hay-signature',
          hasSecret: fromConfig
            ? null
            : (await this.d.routeSecrets.get(orgId, p.pluginId, routeKey(r))) !== undefined,
        });
      }
    return out;
  }

  listEndpoints(orgId: string): Promise<EndpointView[]> {
    return this.d.webhooks.list(orgId);
  }

  async createEndpoint(
    caller: Caller,
    input: NewEndpoint,
  ): Promise<{ endpoint: EndpointView; secret: string }> {
    const out = await this.d.webhooks.create(caller.organizationId, input);
    this.d.audit.record({
      organizationId: caller.organizationId,
      actor: caller.actor,
      action: 'webhook.create',
      outcome: 'ok',
      details: { endpointId: out.endpoint.id, url: out.endpoint.url, eventTypes: out.endpoint.eventTypes },
    });
    return out;
  }

  async deleteEndpoint(caller: Caller, id: string): Promise<{ success: true }> {
    await this.d.webhooks.delete(caller.organizationId, id);
    this.d.audit.record({
      organizationId: caller.organizationId,
      actor: caller.actor,
      action: 'webhook.delete',
      outcome: 'ok',
      details: { endpointId: id },
    });
    return { success: true };
  }

  async rotateEndpointSecret(
    caller: Caller,
    id: string,
    graceSeconds: number,
  ): Promise<{ secret: string; endpoint: EndpointView }> {
    const out = await this.d.webhooks.rotate(caller.organizationId, id, graceSeconds);
    this.d.audit.record({
      organizationId: caller.organizationId,
      actor: caller.actor,
      action: 'webhook.rotate',
      outcome: 'ok',
      details: { endpointId: id, graceSeconds },
    });
    return out;
  }

  async rotateRouteSecret(
    caller: Caller,
    ref: { pluginId: string; method: HttpMethod; path: string },
  ): Promise<{ secret: string; url: string }> {
    const p = this.d.registry.get(caller.organizationId, ref.pluginId);
    if (!p) throw new NotFoundError('PLUGIN_NOT_FOUND', `plugin "${ref.pluginId}" not found`);
    const route = servedRoutes(p).find((r) => r.method === ref.method && r.path === ref.path);
    if (!route)
      throw new NotFoundError(
        'PLUGIN_NOT_FOUND',
        `plugin ${ref.pluginId} serves no route ${ref.method} ${ref.path}`,
      );
    if (route.auth?.secretConfigField)
      throw new ValidationError(
        'INPUT_INVALID',
        `this route's secret is the plugin setting "${route.auth.secretConfigField}"; change it with plugins.configure`,
      );
    const secret = await this.d.routeSecrets.rotate(caller.organizationId, p.pluginId, routeKey(route));
    this.d.audit.record({
      organizationId: caller.organizationId,
      actor: caller.actor,
      action: 'route.rotate',
      pluginId: p.pluginId,
      outcome: 'ok',
      details: { route: routeKey(route) },
    });
    return {
      secret,
      url: `${this.d.publicUrl()}/v1/hooks/${caller.organizationId}/${p.pluginId}${route.path}`,
    };
  }

  listDeliveries(
    orgId: string,
    q: {
      status?: DeliveryStatus | undefined;
      targetKind?: 'plugin' | 'webhook' | undefined;
      target?: string | undefined;
      cursor?: number | undefined;
      limit: number;
    },
  ): Promise<{ deliveries: DeliveryView[]; nextCursor: number | null }> {
    return this.d.store.list(orgId, {
      limit: q.limit,
      ...(q.status ? { status: q.status } : {}),
      ...(q.targetKind ? { targetKind: q.targetKind } : {}),
      ...(q.target ? { target: q.target } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    });
  }

  async getDelivery(orgId: string, id: string): Promise<DeliveryView> {
    const v = await this.d.store.get(orgId, id);
    if (!v) throw new NotFoundError('DELIVERY_NOT_FOUND', `delivery ${id} not found`);
    return v;
  }

  /** A dead delivery back to pending with a fresh attempt budget. */
  async replay(caller: Caller, id: string): Promise<DeliveryView> {
    const ok = await this.d.store.replay(caller.organizationId, id);
    if (!ok) {
      const v = await this.d.store.get(caller.organizationId, id);
      if (!v) throw new NotFoundError('DELIVERY_NOT_FOUND', `delivery ${id} not found`);
      throw new ValidationError(
        'INPUT_INVALID',
        `delivery ${id} is ${v.status}; only a dead delivery can be replayed`,
      );
    }
    this.d.audit.record({
      organizationId: caller.organizationId,
      actor: caller.actor,
      action: 'event.replay',
      outcome: 'ok',
      details: { deliveryId: id },
    });
    this.d.afterReplay();
    return this.getDelivery(caller.organizationId, id);
  }

  /** An event from the org's own systems (API key), delivered like a plugin's. */
  publish(caller: Caller, input: PublishInput): Promise<PublishResult> {
    return this.d.bus.publish(caller.organizationId, { kind: 'api', actor: caller.actor }, input);
  }
}
