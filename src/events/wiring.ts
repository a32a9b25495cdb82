import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { AuditLog } from '../audit/audit-log.js';
import type { HostConfig } from '../config.js';
import type { Db } from '../db/database.js';
import { ConfigError } from '../errors.js';
import type { PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import { createEventsApi } from '../platform/events-api.js';
import type { PlatformApi } from '../platform/platform-api.js';
import type { PluginRegistry } from '../registry/plugin-registry.js';
import { RateLimiter } from '../security/rate-limiter.js';
import type { SecretBox } from '../security/secret-box.js';
import type { PluginSettingsService } from '../tenancy/plugin-settings.js';
import { EventBus, pluginDeliverer } from './bus.js';
import type { EgressPolicy as HostEgressPolicy } from '../egress/policy.js';
import { createLocalEgress, parseEgressAllow, type EgressPolicy } from './egress.js';
import { hostEgress } from './host-egress.js';
import { registerInboundRoutes, RouteSecrets, servedRoutes, routeKey } from './inbound.js';
import { EventsMetrics } from './metrics.js';
import { OutboxStore } from './outbox.js';
import { EventsService } from './service.js';
import { WebhookEndpoints, webhookDeliverer } from './webhooks.js';
import { OutboxWorker } from './worker.js';

export interface EventsWiring {
  service: EventsService;
  /** The `events` platform API, for the host's list of platform APIs. */
  platformApi: PlatformApi;
  /** Mounts the inbound plugin routes (/v1/hooks/...). */
  register(app: FastifyInstance): void;
  /** Starts the outbox worker. Idempotent. */
  start(): void;
  /** Stops the worker: waits `drainMs` for attempts in flight, then aborts and releases them. Idempotent. */
  close(): Promise<void>;
  /** Key rotation: re-encrypt stored secrets; the key ids they use. */
  secrets: { reencrypt(): Promise<number>; keyIds(into: Set<string>): Promise<void> };
  store: OutboxStore;
  worker: OutboxWorker;
}

/**
 * Builds src/events/: outbox store and worker, the event bus, webhook endpoints, inbound routes, the
 * `events` platform API and the service the API router calls. `egress` is the tenant egress policy
 * (the local stand-in built from config.egressAllow when omitted).
 */
export function wireEvents(deps: {
  config: HostConfig;
  db: Db;
  box: SecretBox;
  logger: Logger;
  registry: PluginRegistry;
  settings: PluginSettingsService;
  plugins: PluginService;
  audit: AuditLog;
  metricsRegistry: Registry;
  publicUrl: () => string;
  /** The host's egress policy (src/egress/); without it the local stand-in (tests of this area). */
  hostPolicy?: HostEgressPolicy;
  egress?: EgressPolicy;
}): EventsWiring {
  const { config } = deps;
  const logger = deps.logger.child({ component: 'events' });
  let allow: string[];
  try {
    allow = parseEgressAllow(config.egressAllow);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const host = deps.hostPolicy
    ? hostEgress({
        policy: deps.hostPolicy,
        allow,
        maxResponseBytes: config.egressMaxResponseBytes,
        connectTimeoutMs: config.egressConnectTimeoutMs,
        headersTimeoutMs: config.eventsDeliveryTimeoutMs,
      })
    : undefined;
  const egress = deps.egress ?? host ?? createLocalEgress({ allow });
  const metrics = new EventsMetrics(deps.metricsRegistry);
  const store = new OutboxStore(deps.db);
  const webhooks = new WebhookEndpoints({
    db: deps.db,
    box: deps.box,
    egress,
    maxEndpoints: config.webhookMaxEndpoints,
  });
  const routeSecrets = new RouteSecrets({ db: deps.db, box: deps.box });
  const bus = new EventBus({
    store,
    registry: deps.registry,
    settings: deps.settings,
    webhooks,
    metrics,
    audit: deps.audit,
    maxAttempts: config.eventsMaxAttempts,
    maxPayloadBytes: config.eventsMaxPayloadBytes,
    onAccepted: () => worker.kick(),
  });
  const worker = new OutboxWorker({
    store,
    deliverers: { plugin: pluginDeliverer(deps.plugins), webhook: webhookDeliverer(webhooks, egress) },
    logger,
    metrics,
    audit: deps.audit,
    options: {
      pollIntervalMs: config.eventsPollIntervalMs,
      leaseMs: config.eventsLeaseMs,
      timeoutMs: config.eventsDeliveryTimeoutMs,
      concurrency: config.eventsConcurrency,
      backoffBaseMs: config.eventsBackoffBaseMs,
      backoffMaxMs: config.eventsBackoffMaxMs,
      drainMs: Math.min(config.shutdownDrainMs, config.eventsDeliveryTimeoutMs),
    },
  });
  const limiter = new RateLimiter({
    ratePerMinute: config.inboundRateLimitPerMinute,
    burst: config.inboundRateLimitBurst,
    resolve: (key) => {
      const [orgId = '', pluginId = '', route = ''] = key.split('\u0000');
      const p = deps.registry.get(orgId, pluginId);
      const rate = p ? servedRoutes(p).find((r) => routeKey(r) === route)?.rateLimitPerMinute : undefined;
      return rate
        ? { ratePerMinute: rate, burst: Math.max(1, Math.min(config.inboundRateLimitBurst, rate)) }
        : undefined;
    },
  });
  const service = new EventsService({
    bus,
    store,
    webhooks,
    routeSecrets,
    registry: deps.registry,
    settings: deps.settings,
    audit: deps.audit,
    publicUrl: deps.publicUrl,
    afterReplay: () => worker.kick(),
  });
  return {
    service,
    platformApi: createEventsApi({ bus, maxPayloadBytes: config.eventsMaxPayloadBytes }),
    register: (app) =>
      registerInboundRoutes(app, {
        registry: deps.registry,
        settings: deps.settings,
        bus,
        secrets: routeSecrets,
        limiter,
        audit: deps.audit,
        metrics,
        logger,
        maxBodyBytes: config.inboundMaxBodyBytes,
        toleranceSeconds: 300,
      }),
    start: () => worker.start(),
    close: async () => {
      await worker.close();
      await host?.close();
    },
    secrets: {
      reencrypt: async () => (await webhooks.reencrypt()) + (await routeSecrets.reencrypt()),
      keyIds: async (into) => {
        await webhooks.keyIds(into);
        await routeSecrets.keyIds(into);
      },
    },
    store,
    worker,
  };
}
