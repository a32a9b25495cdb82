import { createGuardedFetch } from '../egress/guarded-fetch.js';
import type { EgressPolicy as HostEgressPolicy, EgressRules } from '../egress/policy.js';
import { urlRules, type EgressPolicy } from './egress.js';

/**
 * The events area's egress interface on top of the host's egress module (src/egress/): the URL rules of
 * `urlRules` (https, or http to an operator-allowed host), then the host policy's address check; requests
 * go through its guarded fetch (connects to exactly the checked address), never following redirects.
 * `close()` drops the fetch's sockets. Idempotent.
 */
export function hostEgress(options: {
  policy: HostEgressPolicy;
  allow: readonly string[];
  maxResponseBytes: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
}): EgressPolicy & { close(): Promise<void> } {
  const rules: EgressRules = { hosts: 'all', label: 'webhook endpoint' };
  const parse = urlRules(options.allow);
  const guarded = createGuardedFetch({
    policy: options.policy,
    rules,
    maxResponseBytes: options.maxResponseBytes,
    connectTimeoutMs: options.connectTimeoutMs,
    headersTimeoutMs: options.headersTimeoutMs,
  });
  const checkUrl = async (raw: string): Promise<void> => {
    const u = parse(raw);
    const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
    await options.policy.resolve(u.hostname, port, rules);
  };
  return {
    checkUrl,
    async fetch(url, init) {
      await checkUrl(url);
      return (await guarded.fetch(url, { ...init, redirect: 'manual' })) as Response;
    },
    close: () => guarded.close(),
  };
}
