/**
 * A read-through cache of database lookups, refreshed in bulk. A value is served for at most `ttlMs` after
 * it was read. A miss (a key absent or expired) loads, in one `loadMany` call, every key missed in the same
 * turn plus every cached key that was used since it was read and expires within the next `ttlMs / 2`; so a
 * steady stream of lookups over N keys costs about two loads per `ttlMs`, not N, and a key nobody asks for
 * again is never read again. Concurrent misses of one key share one load. A key the loader does not answer
 * is not cached (get resolves undefined), so a wrong key never fills the cache. A failed load rejects every
 * get waiting on it and caches nothing. A load that overlaps a local write (set, deleteWhere)
 * answers its waiters but caches nothing, so it cannot put back what the write replaced or removed. At
 * most `maxEntries` are kept (the oldest read go first). Holds no timer: nothing to start or close.
 */
export class BulkRefreshCache<V> {
  /** Insertion order is read order, so expiry order: a refreshed key is deleted and set again. */
  private readonly entries = new Map<string, { value: V; until: number; used: boolean }>();
  /** Bumped by every local write; a load that saw it change stores nothing. */
  private writes = 0;
  private next: { keys: Set<string>; done: Promise<Map<string, V>> } | undefined;
  private readonly now: () => number;

  constructor(
    private readonly loadMany: (keys: readonly string[]) => Promise<ReadonlyMap<string, V>>,
    private readonly options: { ttlMs: number; maxEntries: number; now?: () => number },
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The cached value while fresh, else the value from a bulk load (undefined: the loader has none). */
  async get(key: string): Promise<V | undefined> {
    return this.fresh(key) ?? (await this.load(key)).get(key);
  }

  /** The cached value while fresh; never loads. */
  fresh(key: string): V | undefined {
    const hit = this.entries.get(key);
    if (!hit || hit.until <= this.now()) return undefined;
    hit.used = true;
    return hit.value;
  }

  /** Puts a value read elsewhere (a local write), fresh for ttlMs. */
  set(key: string, value: V): void {
    this.writes++;
    this.store(key, value, this.now() + this.options.ttlMs);
  }

  /** Drops every entry whose value matches (e.g. all tokens of a revoked key). */
  deleteWhere(match: (value: V, key: string) => boolean): void {
    this.writes++;
    for (const [key, entry] of this.entries) if (match(entry.value, key)) this.entries.delete(key);
  }

  size(): number {
    return this.entries.size;
  }

  private load(key: string): Promise<Map<string, V>> {
    if (this.next) {
      this.next.keys.add(key);
      return this.next.done;
    }
    const keys = new Set([key]);
    const batch = {
      keys,
      // a microtask later: every miss of this turn joins the batch before it is read
      done: Promise.resolve().then(() => {
        if (this.next === batch) this.next = undefined;
        return this.run([...this.dueSoon(keys)]);
      }),
    };
    this.next = batch;
    return batch.done;
  }

  /**
   * `keys` plus the used keys expiring within ttlMs / 2 (a prefix of the map: it is in expiry order);
   * expired unused entries met on the way are dropped.
   */
  private dueSoon(keys: Set<string>): Set<string> {
    const now = this.now();
    const horizon = now + this.options.ttlMs / 2;
    for (const [key, entry] of this.entries) {
      if (entry.until > horizon) break;
      if (entry.used) keys.add(key);
      else if (entry.until <= now) this.entries.delete(key);
    }
    return keys;
  }

  private async run(keys: string[]): Promise<Map<string, V>> {
    const readAt = this.now();
    const writes = this.writes;
    const found = await this.loadMany(keys);
    const keep = writes === this.writes;
    const out = new Map<string, V>();
    for (const key of keys) {
      const value = found.get(key);
      if (value !== undefined) out.set(key, value);
      if (!keep) continue;
      if (value === undefined) this.entries.delete(key);
      else this.store(key, value, readAt + this.options.ttlMs);
    }
    return out;
  }

  private store(key: string, value: V, until: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, until, used: false });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}
