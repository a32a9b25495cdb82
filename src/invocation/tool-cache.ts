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
 * Opt-in tool-result cache, keyed by (org, plugin key, checksum, tool, canonical arguments): entries are
 * never shared between organizations and die with a plugin update (checksum). Bounded LRU; `isError`
 * results are never stored. Invalidation: per (org, plugin) on configuration change or tools/list_changed,
 * per plugin on update.
 */
export class ToolResultCache {
  private readonly entries = new Map<string, { result: CallToolResult; expiresAt: number }>();
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  key(orgId: string, pluginKey: string, checksum: string, tool: string, args: unknown): string {
    return `${orgId}\u0000${pluginKey}\u0000${checksum}\u0000${tool}\u0000${canonicalJson(args)}`;
  }

  get(key: string): CallToolResult | undefined {
    const e = this.entries.get(key);
    if (!e || e.expiresAt <= this.now()) {
      if (e) this.entries.delete(key);
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    this.hits++;
    return e.result;
  }

  set(key: string, result: CallToolResult, ttlSeconds: number): void {
    if (result.isError || ttlSeconds <= 0 || this.maxEntries === 0) return;
    this.entries.delete(key);
    this.entries.set(key, { result, expiresAt: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  /** Drops entries of one organization's plugin (orgId given) or of the plugin for everyone. */
  invalidate(pluginKey: string, orgId?: string): void {
    const prefix = orgId === undefined ? undefined : `${orgId}\u0000${pluginKey}\u0000`;
    for (const key of [...this.entries.keys()]) {
      if (prefix ? key.startsWith(prefix) : key.split('\u0000')[1] === pluginKey) this.entries.delete(key);
    }
  }

  stats(): { size: number; hits: number; misses: number; hitRate: number } {
    const total = this.hits + this.misses;
    return {
      size: this.entries.size,
      hits: this.hits,
      misses: this.misses,
      hitRate: total ? this.hits / total : 0,
    };
  }
}
