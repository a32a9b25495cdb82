import { Counter, Histogram, type Registry } from 'prom-client';

type Kind = 'plugin' | 'webhook';

/** Outbox metrics on the host's registry. Labels are bounded: target kind and fixed outcomes. */
export class EventsMetrics {
  private readonly deliveries: Counter<'target' | 'outcome'>;
  private readonly latency: Histogram<'target'>;
  private readonly published: Counter<'source'>;
  readonly inbound: Counter<'outcome'>;

  constructor(registry: Registry) {
    this.deliveries = new Counter({
      name: 'hay_event_deliveries_total',
      help: 'Outbox delivery attempts by target kind and outcome (delivered, retried, dead)',
      labelNames: ['target', 'outcome'] as const,
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'hay_event_delivery_latency_seconds',
      help: 'Time from an event being accepted to its delivery succeeding',
      labelNames: ['target'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600],
      registers: [registry],
    });
    this.published = new Counter({
      name: 'hay_events_published_total',
      help: 'Events accepted by source kind (plugin, route, api); duplicates excluded',
      labelNames: ['source'] as const,
      registers: [registry],
    });
    this.inbound = new Counter({
      name: 'hay_inbound_requests_total',
      help: 'Inbound plugin route requests by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
  }

  delivered(kind: Kind, latencySeconds: number): void {
    this.deliveries.inc({ target: kind, outcome: 'delivered' });
    this.latency.observe({ target: kind }, Math.max(0, latencySeconds));
  }

  retried(kind: Kind): void {
    this.deliveries.inc({ target: kind, outcome: 'retried' });
  }

  dead(kind: Kind): void {
    this.deliveries.inc({ target: kind, outcome: 'dead' });
  }

  accepted(source: 'plugin' | 'route' | 'api'): void {
    this.published.inc({ source });
  }
}
