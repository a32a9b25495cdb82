import { and, count, eq } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { webhookEndpoints, type WebhookEndpointRow } from '../db/schema-events.js';
import { CapacityError, EgressDeniedError, NotFoundError, isHayError } from '../errors.js';
import { collectKeyIds, type SecretBox } from '../security/secret-box.js';
import { matchesEventType } from './bus.js';
import type { EgressPolicy } from './egress.js';
import { haySignatureHeader, newSigningSecret } from './signing.js';
import { DeliveryFailure, type Deliverer } from './worker.js';

export interface EndpointView {
  id: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  ordered: boolean;
  /** The previous secret still signs deliveries until this time (after a rotation with a grace period). */
  previousSecretExpiresAt: string | null;
  createdAt: string;
}

export interface NewEndpoint {
  url: string;
  eventTypes: string[];
  description?: string | undefined;
  ordered?: boolean | undefined;
}

function view(r: WebhookEndpointRow): EndpointView {
  const grace =
    r.previousSecretExpiresAt && r.previousSecretExpiresAt > new Date() ? r.previousSecretExpiresAt : null;
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    eventTypes: r.eventTypes,
    ordered: r.ordered,
    previousSecretExpiresAt: grace?.toISOString() ?? null,
    createdAt: r.createdAt.toISOString(),
  };
}

const e = webhookEndpoints;

/**
 * An organization's outbound webhook endpoints. Signing secrets are stored encrypted (SecretBox) and
 * returned in plain only by create and rotate. URLs pass the egress policy at registration and again
 * at every delivery.
 */
export class WebhookEndpoints {
  constructor(private readonly d: { db: Db; box: SecretBox; egress: EgressPolicy; maxEndpoints: number }) {}

  async create(orgId: string, input: NewEndpoint): Promise<{ endpoint: EndpointView; secret: string }> {
    await this.d.egress.checkUrl(input.url);
    const [n] = await this.d.db.select({ n: count() }).from(e).where(eq(e.organizationId, orgId));
    if ((n?.n ?? 0) >= this.d.maxEndpoints)
      throw new CapacityError(
        `this organization has ${this.d.maxEndpoints} webhook endpoints, the limit; delete one first`,
      );
    const secret = newSigningSecret();
    const [row] = await this.d.db
      .insert(e)
      .values({
        organizationId: orgId,
        url: input.url,
        description: input.description ?? null,
        eventTypes: input.eventTypes,
        ordered: input.ordered ?? false,
        secret: this.d.box.encrypt(secret),
      })
      .returning();
    if (!row) throw new Error('webhook endpoint insert returned nothing');
    return { endpoint: view(row), secret };
  }

  async list(orgId: string): Promise<EndpointView[]> {
    const rows = await this.d.db.select().from(e).where(eq(e.organizationId, orgId)).orderBy(e.createdAt);
    return rows.map(view);
  }

  async delete(orgId: string, id: string): Promise<void> {
    const rows = await this.d.db
      .delete(e)
      .where(and(eq(e.organizationId, orgId), eq(e.id, id)))
      .returning({ id: e.id });
    if (rows.length === 0) throw new NotFoundError('ENDPOINT_NOT_FOUND', `webhook endpoint ${id} not found`);
  }

  /**
   * A new secret, shown once. With `graceSeconds` > 0 the old secret keeps signing (a second v1) until
   * then, so a receiver can switch without dropping deliveries.
   */
  async rotate(
    orgId: string,
    id: string,
    graceSeconds: number,
  ): Promise<{ secret: string; endpoint: EndpointView }> {
    const [old] = await this.d.db
      .select()
      .from(e)
      .where(and(eq(e.organizationId, orgId), eq(e.id, id)));
    if (!old) throw new NotFoundError('ENDPOINT_NOT_FOUND', `webhook endpoint ${id} not found`);
    const secret = newSigningSecret();
    const [row] = await this.d.db
      .update(e)
      .set({
        secret: this.d.box.encrypt(secret),
        previousSecret: graceSeconds > 0 ? old.secret : null,
        previousSecretExpiresAt: graceSeconds > 0 ? new Date(Date.now() + graceSeconds * 1000) : null,
        updatedAt: new Date(),
      })
      .where(and(eq(e.organizationId, orgId), eq(e.id, id)))
      .returning();
    if (!row) throw new NotFoundError('ENDPOINT_NOT_FOUND', `webhook endpoint ${id} not found`);
    return { secret, endpoint: view(row) };
  }

  /** Endpoints of `orgId` that take `type`. */
  async matching(orgId: string, type: string): Promise<{ id: string; ordered: boolean }[]> {
    const rows = await this.d.db
      .select({ id: e.id, ordered: e.ordered, eventTypes: e.eventTypes })
      .from(e)
      .where(eq(e.organizationId, orgId));
    return rows.filter((r) => r.eventTypes.some((p) => matchesEventType(p, type)));
  }

  /** URL and the secrets that sign now (current first), or undefined for a deleted endpoint. */
  async signingFor(orgId: string, id: string): Promise<{ url: string; secrets: string[] } | undefined> {
    const [row] = await this.d.db
      .select()
      .from(e)
      .where(and(eq(e.organizationId, orgId), eq(e.id, id)));
    if (!row) return undefined;
    const secrets = [this.d.box.decrypt(row.secret)];
    if (row.previousSecret && row.previousSecretExpiresAt && row.previousSecretExpiresAt > new Date())
      secrets.push(this.d.box.decrypt(row.previousSecret));
    return { url: row.url, secrets };
  }

  /** Re-encrypts stored secrets under the current key (key rotation); returns how many changed. */
  async reencrypt(): Promise<number> {
    let changed = 0;
    for (const row of await this.d.db.select().from(e)) {
      const patch: Partial<WebhookEndpointRow> = {};
      if (this.d.box.needsReencrypt(row.secret))
        patch.secret = this.d.box.encrypt(this.d.box.decrypt(row.secret));
      if (row.previousSecret && this.d.box.needsReencrypt(row.previousSecret))
        patch.previousSecret = this.d.box.encrypt(this.d.box.decrypt(row.previousSecret));
      const n = Object.keys(patch).length;
      if (n === 0) continue;
      await this.d.db.update(e).set(patch).where(eq(e.id, row.id));
      changed += n;
    }
    return changed;
  }

  /** Key ids the stored secrets use (key rotation keeps them). */
  async keyIds(into: Set<string>): Promise<void> {
    for (const row of await this.d.db.select({ s: e.secret, p: e.previousSecret }).from(e))
      collectKeyIds([row.s, row.p], into);
  }
}

/**
 * Delivers to a webhook endpoint: POST of the JSON envelope, signed `Hay-Signature: t=..,v1=..` over
 * `t.body`, through the egress policy, within the attempt's signal. 2xx is success; an egress refusal
 * or a deleted endpoint is permanent; anything else is retried.
 */
export function webhookDeliverer(endpoints: WebhookEndpoints, egress: EgressPolicy): Deliverer {
  return async ({ delivery, event }, signal) => {
    const target = await endpoints.signingFor(delivery.organizationId, delivery.target);
    if (!target) throw new DeliveryFailure('the webhook endpoint was deleted', { permanent: true });
    const body = JSON.stringify({
      id: event.id,
      type: event.type,
      organizationId: event.organizationId,
      source: event.source,
      publishedAt: event.createdAt.toISOString(),
      payload: event.payload,
    });
    const t = Math.floor(Date.now() / 1000);
    let res: Response;
    try {
      res = await egress.fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Hay-Webhooks/1',
          'hay-signature': haySignatureHeader(target.secrets, t, body),
          'hay-event-id': event.id,
          'hay-event-type': event.type,
          'hay-delivery-id': delivery.id,
          'hay-idempotency-key': delivery.id,
          'hay-attempt': String(delivery.attempts),
        },
        body,
        signal,
      });
    } catch (err) {
      if (err instanceof EgressDeniedError) throw new DeliveryFailure(err.message, { permanent: true });
      if (isHayError(err)) throw new DeliveryFailure(err.message);
      const code = (err as NodeJS.ErrnoException).code;
      throw new DeliveryFailure(
        `request failed${code ? ` (${code})` : ''}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (res.status >= 200 && res.status < 300) return;
    const text = (await res.text().catch(() => '')).slice(0, 200);
    throw new DeliveryFailure(`HTTP ${res.status}${text ? `: ${text}` : ''}`);
  };
}
