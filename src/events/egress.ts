import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { EgressDeniedError, TimeoutError } from '../errors.js';

/**
 * What src/events/ needs from the tenant egress policy. The host's egress module (src/egress/) will
 * provide these; `createLocalEgress` is the stand-in until it lands.
 */
export interface EgressPolicy {
  /**
   * Resolves once `url` may be called for a tenant: http(s) only, plain http only to operator-allowed
   * hosts, and every address the name resolves to is public unless allowed. Throws EgressDeniedError
   * naming the reason.
   */
  checkUrl(url: string, signal?: AbortSignal): Promise<void>;
  /** The same checks, applied again to the address actually connected to (no DNS rebinding). */
  fetch: OutboundFetch;
}

/** A fetch for tenant-directed requests: always with a signal; redirects are not followed. */
export type OutboundFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal },
) => Promise<Response>;

const DENIED_V4 = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const;
const DENIED_V6 = [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const;

const denied = new net.BlockList();
for (const [a, p] of DENIED_V4) denied.addSubnet(a, p, 'ipv4');
for (const [a, p] of DENIED_V6) denied.addSubnet(a, p, 'ipv6');

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else the address itself. */
function unmap(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m?.[1]) return { address: m[1], family: 'ipv4' };
  return { address, family: net.isIPv4(address) ? 'ipv4' : 'ipv6' };
}

/** True for loopback, private, link-local, CGNAT, multicast, reserved and unspecified addresses. */
export function isNonPublicAddress(address: string): boolean {
  const a = unmap(address);
  return denied.check(a.address, a.family);
}

export interface LocalEgressOptions {
  /** Operator allow-list: host names (exact, lowercase), IPs or CIDRs (config egressAllow). */
  allow: readonly string[];
  /** Most response body bytes read; the rest is discarded. Default 64 KiB. */
  maxResponseBytes?: number;
  /** DNS lookup; inject in tests. */
  lookup?: (host: string) => Promise<LookupAddress[]>;
}

/**
 * The URL rules every tenant-directed webhook URL obeys before any address check: http(s) only, no
 * credentials, plain http only to a host name or address on the operator allow-list. Returns the parsed
 * URL or throws EgressDeniedError.
 */
export function urlRules(allowList: readonly string[]): (raw: string) => URL {
  const hosts = new Set<string>();
  const allowed = new net.BlockList();
  for (const entry of allowList) {
    const [ip, bits] = entry.split('/');
    if (ip !== undefined && net.isIP(ip)) {
      const family = net.isIPv4(ip) ? 'ipv4' : 'ipv6';
      if (bits !== undefined) allowed.addSubnet(ip, Number(bits), family);
      else allowed.addAddress(ip, family);
    } else hosts.add(entry);
  }
  return (raw) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new EgressDeniedError(`"${raw.slice(0, 200)}" is not a URL`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      throw new EgressDeniedError(`${u.protocol} URLs are not allowed; use https://`);
    if (u.username || u.password) throw new EgressDeniedError('URLs with credentials are not allowed');
    const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const ip = net.isIP(host) !== 0 ? unmap(host) : undefined;
    const operatorAllowed = hosts.has(host) || (ip !== undefined && allowed.check(ip.address, ip.family));
    if (u.protocol === 'http:' && !operatorAllowed)
      throw new EgressDeniedError(`plain http to ${host} is not allowed; use https://`);
    return u;
  };
}

/** Parses `HAY_EGRESS_ALLOW` (comma separated); throws naming a bad entry. */
export function parseEgressAllow(raw: string | undefined): string[] {
  if (!raw) return [];
  const out: string[] = [];
  for (const part of raw.split(',')) {
    // the host-wide HAY_EGRESS_ALLOW may carry a :port (src/egress/policy.ts); webhooks allow any port
    const entry = part
      .trim()
      .toLowerCase()
      .replace(/^\[(.*)\](:\d+)?$/, '$1')
      .replace(/^([^:]*):\d+$/, '$1');
    if (entry === '') continue;
    const [ip, bits] = entry.split('/');
    const valid =
      (net.isIP(ip ?? '') !== 0 && (bits === undefined || /^\d{1,3}$/.test(bits))) ||
      (bits === undefined && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(entry));
    if (!valid) throw new RangeError(`HAY_EGRESS_ALLOW: "${part.trim()}" is not a host name, IP or CIDR`);
    out.push(entry);
  }
  return out;
}

/**
 * The stand-in egress policy: denies non-public addresses (resolved names included, and again at
 * connect time through the socket's lookup) unless the operator allowed the host name or address.
 */
export function createLocalEgress(options: LocalEgressOptions): EgressPolicy {
  const hosts = new Set<string>();
  const allowed = new net.BlockList();
  for (const entry of options.allow) {
    const [ip, bits] = entry.split('/');
    if (ip !== undefined && net.isIP(ip)) {
      const family = net.isIPv4(ip) ? 'ipv4' : 'ipv6';
      if (bits !== undefined) allowed.addSubnet(ip, Number(bits), family);
      else allowed.addAddress(ip, family);
    } else hosts.add(entry);
  }
  const maxResponseBytes = options.maxResponseBytes ?? 64 * 1024;
  const resolve =
    options.lookup ??
    ((host: string) =>
      new Promise<LookupAddress[]>((ok, fail) =>
        dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? fail(err) : ok(addrs))),
      ));

  const addressAllowed = (address: string) => {
    const a = unmap(address);
    return allowed.check(a.address, a.family) || !isNonPublicAddress(address);
  };
  const parse = urlRules(options.allow);
  const hostOf = (u: URL) => u.hostname.replace(/^\[|\]$/g, '').toLowerCase();

  const checkUrl = async (raw: string): Promise<void> => {
    const u = parse(raw);
    const host = hostOf(u);
    if (hosts.has(host)) return;
    if (net.isIP(host)) {
      if (!addressAllowed(host)) throw new EgressDeniedError(`${host} is not a public address`);
      return;
    }
    let addrs: LookupAddress[];
    try {
      addrs = await resolve(host);
    } catch {
      throw new EgressDeniedError(`${host} does not resolve`);
    }
    if (addrs.length === 0) throw new EgressDeniedError(`${host} does not resolve`);
    for (const a of addrs)
      if (!addressAllowed(a.address))
        throw new EgressDeniedError(`${host} resolves to ${a.address}, which is not a public address`);
  };

  const guardedLookup: net.LookupFunction = (host, opts, cb) => {
    resolve(host).then(
      (addrs) => {
        const bad = hosts.has(host.toLowerCase()) ? undefined : addrs.find((a) => !addressAllowed(a.address));
        if (bad || addrs.length === 0) {
          cb(new EgressDeniedError(`${host} resolves to a non-public address`), '', 4);
          return;
        }
        if (opts.all) cb(null, addrs);
        else {
          const first = addrs[0] as LookupAddress;
          cb(null, first.address, first.family);
        }
      },
      (err: NodeJS.ErrnoException) => cb(err, '', 4),
    );
  };

  const fetch: OutboundFetch = async (raw, init) => {
    await checkUrl(raw);
    const u = parse(raw);
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolveResponse, reject) => {
      const req = mod.request(
        u,
        { method: init.method, headers: init.headers, lookup: guardedLookup, signal: init.signal },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < maxResponseBytes) chunks.push(c.subarray(0, maxResponseBytes - size));
            size += c.length;
          });
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers))
              if (typeof v === 'string') headers.set(k, v);
              else if (Array.isArray(v)) for (const x of v) headers.append(k, x);
            const status = res.statusCode ?? 500;
            const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
            resolveResponse(new Response(body, { status, headers }));
          });
        },
      );
      req.on('error', (err) => {
        if (init.signal.aborted)
          reject(
            init.signal.reason instanceof Error && init.signal.reason.name === 'TimeoutError'
              ? new TimeoutError(`no answer from ${u.host} in time`)
              : err,
          );
        else reject(err);
      });
      if (init.body !== undefined) req.end(init.body);
      else req.end();
    });
  };

  return { checkUrl, fetch };
}
