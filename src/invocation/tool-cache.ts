import type { CallToolResult } from '../runtime/ports.js';

/** Canonical JSON: object keys sorted at every depth, so equal arguments give equal keys. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

/**
 * Approximate in-memory size of a JSON value: string characters (keys included) plus 8 per other
 * value. Iterative, so a deeply nested result cannot overflow the stack.
 */
export function approxBytes(value: unknown): number {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') total += v.length;
    else if (v === null || typeof v !== 'object') total += 8;
    else if (Array.isArray(v)) {
      total += 8;
      for (const x of v) stack.push(x);
    } else {
      total += 8;
      for (const [k, x] of Object.entries(v)) {
        total += k.length;
        stack.push(x);
      }
    }
  }
  return total;
}

export interface ToolCacheBudget {
  /** Approximate bytes (see approxBytes) of all entries together; config toolCacheMaxBytes. */
  maxBytes: number;
  /** Approximate bytes of one organization's entries; config toolCacheMaxBytesPerOrg. */
  maxBytesPerOrg: number;
}

interface Entry {
  result: CallToolResult;
  expiresAt: number;
  bytes: number;
  orgId: string;
}

/**
 * Opt-in tool-result cache, keyed by (org, plugin key, checksum, tool, canonical arguments): entries are
 * never shared between organizations and die with a plugin update (checksum). Bounded LRU by entries
 * and by bytes, globally and per organization: an organization over its budget evicts its own oldest
 * entries, never another's (until the global budget is reached); a result larger than the per-org
 * budget is not stored. `isError` results are never stored. Invalidation: per (org, plugin) on
 * configuration change or tools/list_changed, per plugin on update.
 */
export class ToolResultCache {
  private readonly entries = new Map<string, Entry>();
  /** Per organization: its keys in LRU order and their bytes. */
  private readonly orgs = new Map<string, { keys: Set<string>; bytes: number }>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
    private readonly budget: ToolCacheBudget = {
      maxBytes: Number.POSITIVE_INFINITY,
      maxBytesPerOrg: Number.POSITIVE_INFINITY,
    },
  ) {}

  key(orgId: string, pluginKey: string, checksum: string, tool: string, args: unknown): string {
    return `${orgId}\u0000${pluginKey}\u0000${checksum}\u0000${tool}\u0000${canonicalJson(args)}`;
  }

  get(key: string): CallToolResult | undefined {
    const e = this.entries.get(key);
    if (!e || e.expiresAt <= this.now()) {
      if (e) this.remove(key);
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    const org = this.orgs.get(e.orgId);
    org?.keys.delete(key);
    org?.keys.add(key);
    this.hits++;
    return e.result;
  }

  set(key: string, result: CallToolResult, ttlSeconds: number): void {
    if (result.isError || ttlSeconds <= 0 || this.maxEntries === 0) return;
    this.remove(key);
    const bytes = approxBytes(result) + key.length;
    if (bytes > this.budget.maxBytesPerOrg || bytes > this.budget.maxBytes) return;
    const orgId = key.slice(0, key.indexOf('\u0000'));
    let org = this.orgs.get(orgId);
    if (!org) {
      org = { keys: new Set(), bytes: 0 };
      this.orgs.set(orgId, org);
    }
    while (org.bytes + bytes > this.budget.maxBytesPerOrg) {
      const oldest = org.keys.values().next();
      if (oldest.done) break;
      this.remove(oldest.value);
    }
    this.orgs.set(orgId, org);
    this.entries.set(key, { result, expiresAt: this.now() + ttlSeconds * 1000, bytes, orgId });
    org.keys.add(key);
    org.bytes += bytes;
    this.bytes += bytes;
    while (this.entries.size > this.maxEntries || this.bytes > this.budget.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value);
    }
  }

  /** Drops entries of one organization's plugin (orgId given) or of the plugin for everyone. */
  invalidate(pluginKey: string, orgId?: string): void {
    const prefix = orgId === undefined ? undefined : `${orgId}\u0000${pluginKey}\u0000`;
    const keys = orgId === undefined ? this.entries.keys() : (this.orgs.get(orgId)?.keys ?? []);
    for (const key of [...keys]) {
      if (prefix ? key.startsWith(prefix) : key.split('\u0000')[1] === pluginKey) this.remove(key);
    }
  }

  stats(): { size: number; bytes: number; hits: number; misses: number; hitRate: number } {
    const total = this.hits + this.misses;
    return {
      size: this.entries.size,
      bytes: this.bytes,
      hits: this.hits,
      misses: this.misses,
      hitRate: total ? this.hits / total : 0,
    };
  }

  /** Approximate bytes held for one organization. */
  bytesOf(orgId: string): number {
    return this.orgs.get(orgId)?.bytes ?? 0;
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.bytes -= e.bytes;
    const org = this.orgs.get(e.orgId);
    if (!org) return;
    org.keys.delete(key);
    org.bytes -= e.bytes;
    if (org.keys.size === 0) this.orgs.delete(e.orgId);
  }
}
