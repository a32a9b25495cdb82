import os from 'node:os';
import {
  localhostAllowedHostnames,
  validateHostHeader,
  validateOriginHeader,
} from '@modelcontextprotocol/server';

/** Hostnames (no port; IPv6 in brackets) `/mcp` accepts in `Host` / `Origin`; 'any' turns a check off. */
export interface McpHostAllowList {
  hosts: readonly string[] | 'any';
  origins: readonly string[] | 'any';
}

const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);
const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|::1|\[::1\])$/i;

/**
 * The allow-list `/mcp` checks against (DNS-rebinding protection). Configured entries win; `*` turns a
 * check off. Unset hosts default to the listen address (all interface addresses and the machine's
 * hostname when bound to every interface; also localhost, 127.0.0.1 and [::1] when bound to loopback or
 * every interface) plus the host of `HAY_API_URL`. Unset origins default to the same list as hosts.
 */
export function mcpHostAllowList(o: {
  listenHost: string;
  apiUrl: string | undefined;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}): McpHostAllowList {
  const hosts = o.allowedHosts.length > 0 ? fromSetting(o.allowedHosts) : defaults(o.listenHost, o.apiUrl);
  const origins = o.allowedOrigins.length > 0 ? fromSetting(o.allowedOrigins) : hosts;
  return { hosts, origins };
}

/**
 * Why a request's headers are refused, or undefined when they pass. A missing `Origin` passes (non-browser
 * clients send none); a missing or foreign `Host` does not. The parsing is the SDK's.
 */
export function refusedHeaders(
  list: McpHostAllowList,
  host: string | undefined,
  origin: string | undefined,
): string | undefined {
  if (list.hosts !== 'any') {
    const r = validateHostHeader(host, [...list.hosts]);
    if (!r.ok) return `${r.message}; this host serves /mcp only under the names in HAY_MCP_ALLOWED_HOSTS`;
  }
  if (list.origins !== 'any') {
    const r = validateOriginHeader(origin, [...list.origins]);
    if (!r.ok) return `${r.message}; /mcp accepts browser requests only from HAY_MCP_ALLOWED_ORIGINS`;
  }
  return undefined;
}

/** Distinct `Host` + `Origin` pairs whose verdict a header check keeps; past it, the memory starts over. */
export const MAX_REMEMBERED_HEADER_PAIRS = 256;
/** Longer `Host` + `Origin` pairs are checked every time, never kept. */
const MAX_REMEMBERED_PAIR_CHARS = 512;

/**
 * refusedHeaders over one allow-list, remembering the verdict of the last MAX_REMEMBERED_HEADER_PAIRS
 * distinct pairs (a client sends the same `Host` and `Origin` on every request; the SDK's parsing of
 * them is then done once). Same answers as refusedHeaders.
 */
export function headerCheck(
  list: McpHostAllowList,
): (host: string | undefined, origin: string | undefined) => string | undefined {
  const verdicts = new Map<string, string | undefined>();
  return (host, origin) => {
    const key = `${host === undefined ? '\u0000' : `h${host}`}\n${origin === undefined ? '\u0000' : `o${origin}`}`;
    if (verdicts.has(key)) return verdicts.get(key);
    const verdict = refusedHeaders(list, host, origin);
    if (key.length <= MAX_REMEMBERED_PAIR_CHARS) {
      if (verdicts.size >= MAX_REMEMBERED_HEADER_PAIRS) verdicts.clear();
      verdicts.set(key, verdict);
    }
    return verdict;
  };
}

function fromSetting(entries: readonly string[]): readonly string[] | 'any' {
  if (entries.includes('*')) return 'any';
  return [...new Set(entries.map(hostnameOf).filter((h): h is string => h !== undefined))];
}

/** `example.com`, `example.com:8443`, `https://example.com`, `[::1]` → the hostname as URL parses it. */
function hostnameOf(entry: string): string | undefined {
  try {
    return new URL(entry.includes('://') ? entry : `http://${entry}`).hostname || undefined;
  } catch {
    return undefined;
  }
}

function defaults(listenHost: string, apiUrl: string | undefined): readonly string[] {
  const out = new Set<string>();
  const add = (h: string | undefined) => {
    const name =
      h === undefined ? undefined : hostnameOf(h.includes(':') && !h.startsWith('[') ? `[${h}]` : h);
    if (name) out.add(name);
  };
  if (WILDCARD.has(listenHost)) {
    for (const h of localhostAllowedHostnames()) out.add(h);
    add(os.hostname());
    for (const addrs of Object.values(os.networkInterfaces()))
      for (const a of addrs ?? []) add(a.address.replace(/%.*$/, ''));
  } else {
    if (LOOPBACK.test(listenHost)) for (const h of localhostAllowedHostnames()) out.add(h);
    add(listenHost);
  }
  if (apiUrl) {
    try {
      out.add(new URL(apiUrl).hostname);
    } catch {
      // an unparsable HAY_API_URL adds nothing
    }
  }
  return [...out];
}
