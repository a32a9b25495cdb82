import type { Caller, PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';

interface Subscriber {
  /** The session's caller: renewing on a restarted instance goes through PluginService as this caller. */
  caller: Caller;
  /** The URI the client subscribed with (what notifications/resources/updated carries back). */
  asked: string;
  notify(uri: string): void;
}

/** One 2025-11-25 session's resource subscriptions; close() drops them all. */
export interface SessionSubscriptions {
  /** Subscribes to a plugin's own URI; false (nothing done) past the per-session bound. Idempotent. */
  subscribe(pluginId: string, uri: string, asked: string): Promise<boolean>;
  unsubscribe(pluginId: string, uri: string): Promise<void>;
  close(): void;
}

/**
 * Resource subscriptions of `/mcp` sessions, relayed to plugins with one plugin-side subscription per
 * (organization, plugin, URI) however many sessions hold it (the plugin's is dropped with the last).
 * notifications/resources/updated of a plugin reaches only the sessions of that organization that
 * subscribed to that URI. A plugin's subscription lasts as long as its instance: renew() subscribes
 * again on an instance that is running again (after a crash, an idle stop, a restart or an update).
 */
export class ResourceSubscriptions {
  private readonly byResource = new Map<string, Set<Subscriber>>();

  constructor(private readonly d: { plugins: PluginService; logger: Logger; maxPerSession: number }) {}

  /** For the organization's plugin instance's notifications/resources/updated of its own `uri`. */
  updated(orgId: string, pluginId: string, uri: string): void {
    for (const s of this.byResource.get(key(orgId, pluginId, uri)) ?? []) s.notify(s.asked);
  }

  /**
   * The plugin's instance serving `orgId` (undefined: a shared instance, serving every organization) is
   * running again and knows none of the subscriptions held on it: subscribes again to each URI held,
   * one after the other, as one of the sessions holding it. A failure is logged and leaves the sessions
   * subscribed (the next running instance is asked again). Never rejects.
   */
  renew(orgId: string | undefined, pluginId: string): Promise<void> {
    const held: { orgId: string; uri: string; caller: Caller }[] = [];
    for (const [k, set] of this.byResource) {
      const [o = '', p, ...rest] = k.split('\u0000');
      const first = set.values().next();
      if (p !== pluginId || (orgId !== undefined && o !== orgId) || first.done) continue;
      held.push({ orgId: o, uri: rest.join('\u0000'), caller: first.value.caller });
    }
    return (async () => {
      for (const h of held) {
        // dropped by its last session meanwhile
        if (!this.byResource.has(key(h.orgId, pluginId, h.uri))) continue;
        await this.d.plugins.subscribeResource(h.caller, pluginId, h.uri, true).catch((err: unknown) => {
          this.d.logger.warn(
            { orgId: h.orgId, pluginId, err: String(err) },
            'resources/subscribe on the restarted instance failed',
          );
        });
      }
    })();
  }

  /** Subscriptions currently held, across sessions (for tests and metrics). */
  count(): number {
    let n = 0;
    for (const set of this.byResource.values()) n += set.size;
    return n;
  }

  session(caller: Caller, notify: (uri: string) => void): SessionSubscriptions {
    const mine = new Map<string, { pluginId: string; uri: string; sub: Subscriber }>();
    const orgId = caller.organizationId;
    const drop = async (k: string) => {
      const held = mine.get(k);
      if (!held) return;
      mine.delete(k);
      const set = this.byResource.get(k);
      set?.delete(held.sub);
      if (set && set.size === 0) {
        this.byResource.delete(k);
        await this.d.plugins
          .subscribeResource(caller, held.pluginId, held.uri, false)
          .catch((err: unknown) => {
            this.d.logger.debug(
              { orgId, pluginId: held.pluginId, err: String(err) },
              'resources/unsubscribe failed',
            );
          });
      }
    };
    return {
      subscribe: async (pluginId, uri, asked) => {
        const k = key(orgId, pluginId, uri);
        if (mine.has(k)) return true;
        if (mine.size >= this.d.maxPerSession) return false;
        const sub: Subscriber = { caller, asked, notify };
        let set = this.byResource.get(k);
        const first = !set;
        if (first) await this.d.plugins.subscribeResource(caller, pluginId, uri, true);
        set = this.byResource.get(k) ?? new Set();
        this.byResource.set(k, set);
        set.add(sub);
        mine.set(k, { pluginId, uri, sub });
        return true;
      },
      unsubscribe: (pluginId, uri) => drop(key(orgId, pluginId, uri)),
      close: () => {
        for (const k of [...mine.keys()]) void drop(k);
      },
    };
  }
}

function key(orgId: string, pluginId: string, uri: string): string {
  return `${orgId}\u0000${pluginId}\u0000${uri}`;
}
