import { PermissionDeniedError, RateLimitError } from '../errors.js';
import { RateLimiter } from '../security/rate-limiter.js';

export interface PlatformQuotaOptions {
  /** Units per organization and hour, by platform API (e.g. email: recipients); 0 = API off. */
  perOrgPerHour: Partial<Record<string, number>>;
  /** The config variable that sets each API's quota, for error messages. */
  variables: Partial<Record<string, string>>;
  now?: () => number;
}

/**
 * Per-organization quotas on platform APIs: a token bucket per (org, api) that holds one hour's quota
 * and refills continuously. take() throws RateLimitError (429) naming the quota and its variable.
 */
export class PlatformQuotas {
  private readonly limiters = new Map<string, { limiter: RateLimiter; perHour: number }>();

  constructor(private readonly options: PlatformQuotaOptions) {
    for (const [api, perHour] of Object.entries(options.perOrgPerHour)) {
      if (perHour === undefined || perHour <= 0) continue;
      this.limiters.set(api, {
        perHour,
        limiter: new RateLimiter({
          ratePerMinute: perHour / 60,
          burst: perHour,
          ...(options.now ? { now: options.now } : {}),
        }),
      });
    }
  }

  /** Takes `units` of `api`'s quota for `orgId`; APIs without a quota entry are unlimited. */
  take(orgId: string, pluginId: string, api: string, units: number): void {
    const configured = this.options.perOrgPerHour[api];
    if (configured === undefined) return;
    const variable = this.options.variables[api] ?? 'the operator configuration';
    const entry = this.limiters.get(api);
    if (!entry) throw new PermissionDeniedError(pluginId, `${api} (disabled on this host: ${variable}=0)`);
    const taken = entry.limiter.take(orgId, units);
    if (taken.ok) return;
    const retry = Number.isFinite(taken.retryAfterMs)
      ? `retry in ${Math.ceil(taken.retryAfterMs / 1000)} s`
      : 'this request is larger than the whole quota';
    throw new RateLimitError(
      `${api} quota for this organization exceeded: ${entry.perHour} per hour (${variable}); ${retry}`,
      Number.isFinite(taken.retryAfterMs) ? taken.retryAfterMs : 3_600_000,
    );
  }
}
