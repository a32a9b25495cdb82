import { lookup } from 'node:dns/promises';
import { EgressError } from '../errors.js';
import { deniedRange, formatIp, inCidr, parseCidr, parseIp, type Cidr } from './address.js';

/** One operator allow entry: a CIDR/address or a host name, optionally limited to one port. */
export type AllowEntry =
  | { kind: 'cidr'; cidr: Cidr; port: number | undefined; text: string }
  | { kind: 'host'; host: string; port: number | undefined; text: string };

/**
 * Parses the operator allow-list (HAY_EGRESS_ALLOW): comma or whitespace separated entries, each a CIDR
 * (`10.1.0.0/16`), an address (`127.0.0.1`, `[::1]`), or a host name, with an optional `:port`
 * (`127.0.0.1:4010`, `[fd00::5]:443`, `wiki.internal:8080`). Throws an Error naming the bad entry.
 */
export function parseAllowList(text: string | undefined): AllowEntry[] {
  const out: AllowEntry[] = [];
  for (const entry of (text ?? '').split(/[\s,]+/).filter((e) => e !== '')) {
    const parsed = parseAllowEntry(entry);
    if (!parsed)
      throw new Error(
        `egress allow entry ${JSON.stringify(entry)} is not a CIDR, an address or a host name (with an optional :port)`,
      );
    out.push(parsed);
  }
  return out;
}

function parseAllowEntry(text: string): AllowEntry | undefined {
  let body = text;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracket) {
    body = bracket[1] ?? '';
    port = bracket[2] !== undefined ? Number(bracket[2]) : undefined;
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const [h, p] = text.split(':');
    if (!/^\d{1,5}$/.test(p ?? '')) return undefined;
    body = h ?? '';
    port = Number(p);
  }
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  const cidr = parseCidr(body);
  if (cidr) return { kind: 'cidr', cidr, port, text };
  const host = normalizeHost(body);
  if (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(host) && !/^[\d.]+$/.test(host))
    return { kind: 'host', host, port, text };
  return undefined;
}

/** Lower case, without IPv6 brackets or a trailing dot. */
export function normalizeHost(host: string): string {
  return host
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
}

/**
 * What one party may reach. `hosts: 'all'`: any host name (addresses still checked). Otherwise the
 * manifest's permissions.network.hosts patterns: `name`, `name:port`, `*.suffix` (subdomains only).
 * `label` names the party in errors (e.g. `plugin probe`).
 */
export interface EgressRules {
  hosts: 'all' | readonly string[];
  label: string;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

export interface EgressPolicyOptions {
  allow: readonly AllowEntry[];
  /** Resolves a host name to every address. Default: dns.lookup(all, verbatim). */
  resolve?: Resolver;
  /** Bound on one resolution. Default 5000. */
  resolveTimeoutMs?: number;
  /**
   * How long a successful resolution is reused (HAY_EGRESS_DNS_CACHE_MS); 0 = resolve every time. The
   * check always runs on the addresses actually connected to, so caching never lets a denied address in.
   */
  dnsCacheMs?: number;
  /** Host names kept in that cache (oldest dropped first). Default 1024. */
  dnsCacheEntries?: number;
  now?: () => number;
}

/** An address the caller must connect to (exactly this one: it is what was checked). */
export interface CheckedTarget {
  host: string;
  address: string;
  family: 4 | 6;
  port: number;
}

/**
 * The egress policy for tenant traffic: a destination is reached only when the party's rules name the
 * host, and the address it resolves to is public or operator-allowed. Resolution happens once, here; the
 * connection must use the returned address (so a name that re-resolves to loopback later never matters).
 */
export class EgressPolicy {
  readonly #allow: readonly AllowEntry[];
  readonly #resolve: Resolver;
  readonly #resolveTimeoutMs: number;
  readonly #cacheMs: number;
  readonly #cacheEntries: number;
  readonly #now: () => number;
  /** host -> addresses and when they expire; in-flight resolutions are shared. */
  readonly #cache = new Map<
    string,
    { at: number; addresses: Promise<{ address: string; family: number }[]> }
  >();

  constructor(options: EgressPolicyOptions) {
    this.#allow = options.allow;
    this.#resolve = options.resolve ?? ((host) => lookup(host, { all: true, verbatim: true }));
    this.#resolveTimeoutMs = options.resolveTimeoutMs ?? 5000;
    this.#cacheMs = options.dnsCacheMs ?? 0;
    this.#cacheEntries = options.dnsCacheEntries ?? 1024;
    this.#now = options.now ?? Date.now;
  }

  /** The host's addresses: from the cache while fresh, else one resolution (shared by concurrent callers). */
  #addresses(host: string): Promise<{ address: string; family: number }[]> {
    if (this.#cacheMs <= 0) return withTimeout(this.#resolve(host), this.#resolveTimeoutMs, host);
    const now = this.#now();
    const hit = this.#cache.get(host);
    if (hit && now - hit.at < this.#cacheMs) return hit.addresses;
    this.#cache.delete(host);
    const addresses = withTimeout(this.#resolve(host), this.#resolveTimeoutMs, host);
    this.#cache.set(host, { at: now, addresses });
    // failures are not cached
    addresses.catch(() => {
      if (this.#cache.get(host)?.addresses === addresses) this.#cache.delete(host);
    });
    while (this.#cache.size > this.#cacheEntries) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    return addresses;
  }

  /** Throws EGRESS_DENIED unless `rules` name `host:port`. No DNS. */
  checkHostName(rawHost: string, port: number, rules: EgressRules): void {
    if (rules.hosts === 'all') return;
    const host = normalizeHost(rawHost);
    if (rules.hosts.some((pattern) => hostMatches(pattern, host, port))) return;
    throw new EgressError(
      'EGRESS_DENIED',
      `Egress denied: ${rules.label} may not reach ${host}:${port}; it is not in permissions.network.hosts`,
      { host, port },
    );
  }

  /** Throws EGRESS_DENIED when the address is in a denied range and no operator entry allows it. */
  checkAddress(address: string, port: number, rules: EgressRules, host?: string): void {
    const ip = parseIp(address);
    if (!ip) throw new EgressError('EGRESS_DENIED', `Egress denied: ${address} is not an IP address`);
    const range = deniedRange(ip);
    if (!range) return;
    const name = host !== undefined ? normalizeHost(host) : undefined;
    const allowed = this.#allow.some((e) =>
      e.kind === 'cidr'
        ? inCidr(ip, e.cidr) && (e.port === undefined || e.port === port)
        : name !== undefined && e.host === name && (e.port === undefined || e.port === port),
    );
    if (allowed) return;
    const shown = formatIp(ip);
    const via = name !== undefined && name !== shown ? `${name} resolves to ` : '';
    throw new EgressError(
      'EGRESS_DENIED',
      `Egress denied: ${rules.label} may not reach ${via}${shown}:${port} (${range.text} is a private, loopback, link-local or reserved range; the operator can allow it with HAY_EGRESS_ALLOW)`,
      { address: shown, port, range: range.text },
    );
  }

  /**
   * Checks the name against `rules`, resolves it once (an IP literal is used as is), and returns the first
   * address the policy allows. Throws EGRESS_DENIED when none is allowed (naming the first refused one).
   */
  async resolve(rawHost: string, port: number, rules: EgressRules): Promise<CheckedTarget> {
    const host = normalizeHost(rawHost);
    this.checkHostName(host, port, rules);
    const literal = parseIp(host);
    if (literal) {
      this.checkAddress(host, port, rules);
      return { host, address: formatIp(literal), family: literal.length === 4 ? 4 : 6, port };
    }
    let addresses: { address: string; family: number }[];
    try {
      addresses = await this.#addresses(host);
    } catch (err) {
      if (err instanceof EgressError) throw err;
      const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'error';
      throw new EgressError('EGRESS_DENIED', `Egress failed: cannot resolve ${host} (${code})`, { host });
    }
    let firstDenied: unknown;
    for (const a of addresses) {
      try {
        this.checkAddress(a.address, port, rules, host);
        return { host, address: a.address, family: a.family === 6 ? 6 : 4, port };
      } catch (err) {
        firstDenied ??= err;
      }
    }
    if (firstDenied) throw firstDenied;
    throw new EgressError('EGRESS_DENIED', `Egress failed: ${host} resolves to no address`, { host });
  }
}

function hostMatches(pattern: string, host: string, port: number): boolean {
  const lower = pattern.toLowerCase();
  const colon = lower.lastIndexOf(':');
  const hasPort = colon !== -1 && /^\d+$/.test(lower.slice(colon + 1));
  const name = hasPort ? lower.slice(0, colon) : lower;
  if (hasPort && Number(lower.slice(colon + 1)) !== port) return false;
  if (name.startsWith('*.')) return host.endsWith(name.slice(1)) && host.length > name.length - 1;
  return host === name;
}

function withTimeout<T>(promise: Promise<T>, ms: number, host: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new EgressError('EGRESS_DENIED', `Egress failed: resolving ${host} took over ${ms} ms`)),
      ms,
    );
    timer.unref();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
