import { isIP } from 'node:net';

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = Uint8Array;

/** Parses an IPv4 or IPv6 literal (no brackets; a `%zone` suffix is dropped). Undefined when not an IP. */
export function parseIp(text: string): IpBytes | undefined {
  const raw = text.replace(/%.*$/, '');
  const kind = isIP(raw);
  if (kind === 4) return parseV4(raw);
  if (kind === 6) return parseV6(raw);
  return undefined;
}

function parseV4(raw: string): IpBytes | undefined {
  const parts = raw.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return Uint8Array.from(parts);
}

function parseV6(raw: string): IpBytes | undefined {
  let text = raw.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const dotted = text.slice(lastColon + 1);
  if (dotted.includes('.')) {
    const v4 = parseV4(dotted);
    if (!v4) return undefined;
    const hi = (((v4[0] ?? 0) << 8) | (v4[1] ?? 0)).toString(16);
    const lo = (((v4[2] ?? 0) << 8) | (v4[3] ?? 0)).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const words = expandV6(text);
  return words ? wordsToBytes(words) : undefined;
}

function expandV6(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' || halves[0] === undefined ? [] : halves[0].split(':');
  const rest =
    halves.length === 2 ? (halves[1] === '' || halves[1] === undefined ? [] : halves[1].split(':')) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? head.length !== 8 : missing < 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const words = all.map((w) => (/^[0-9a-f]{1,4}$/.test(w) ? parseInt(w, 16) : NaN));
  return words.some(Number.isNaN) || words.length !== 8 ? undefined : words;
}

function wordsToBytes(words: number[]): IpBytes {
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** Text form (IPv4 dotted, IPv6 compressed lower-case) of parsed bytes. */
export function formatIp(ip: IpBytes): string {
  if (ip.length === 4) return Array.from(ip).join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push((((ip[i] ?? 0) << 8) | (ip[i + 1] ?? 0)).toString(16));
  return words
    .join(':')
    .replace(/(^|:)0(:0)+(:|$)/, '::')
    .replace(/:{3,}/, '::');
}

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one that the network would deliver to that
 * IPv4 host: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
 * (2002:aabb:ccdd::/48). Undefined otherwise.
 */
export function embeddedV4(ip: IpBytes): IpBytes | undefined {
  if (ip.length !== 16) return undefined;
  const zeros = (from: number, to: number) => ip.subarray(from, to).every((b) => b === 0);
  if (zeros(0, 10) && ip[10] === 0xff && ip[11] === 0xff) return ip.slice(12, 16);
  if (zeros(0, 12) && !zeros(12, 16) && !(zeros(12, 15) && ip[15] === 1)) return ip.slice(12, 16);
  if (ip[0] === 0x00 && ip[1] === 0x64 && ip[2] === 0xff && ip[3] === 0x9b && zeros(4, 12))
    return ip.slice(12, 16);
  if (ip[0] === 0x20 && ip[1] === 0x02) return ip.slice(2, 6);
  return undefined;
}

/** A CIDR block. */
export interface Cidr {
  bytes: IpBytes;
  prefix: number;
  text: string;
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (a /32 or /128). Undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.length * 8;
  const prefix = slash === -1 ? max : Number(text.slice(slash + 1));
  if (slash !== -1 && !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { bytes: ip, prefix, text };
}

/** True when `ip` lies in `cidr` (same family only). */
export function inCidr(ip: IpBytes, cidr: Cidr): boolean {
  if (ip.length !== cidr.bytes.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip[i] ?? 0) & mask) !== ((cidr.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

const cidrs = (list: readonly string[]): Cidr[] =>
  list.map((t) => {
    const c = parseCidr(t);
    if (!c) throw new Error(`bad built-in CIDR ${t}`);
    return c;
  });

/**
 * Ranges tenant traffic may never reach unless the operator allows them: this host, its networks, cloud
 * metadata, carrier-grade NAT, multicast, broadcast, documentation and reserved space.
 */
export const DENIED_RANGES: readonly Cidr[] = cidrs([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  '100::/64',
  '2001::/32',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
]);

/** The denied range `ip` (or the IPv4 address it embeds) falls in, or undefined when it is public. */
export function deniedRange(ip: IpBytes): Cidr | undefined {
  const v4 = embeddedV4(ip);
  if (v4) return DENIED_RANGES.find((c) => inCidr(v4, c));
  return DENIED_RANGES.find((c) => inCidr(ip, c));
}
