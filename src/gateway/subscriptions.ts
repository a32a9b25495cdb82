import type { Caller, PluginService } from '../invocation/plugin-service.js';
import type { Logger } from '../logger.js';
import { SHARED_INSTANCE_ORG } from '../runtime/ports.js';

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
 * again on an instance that is running again (after a crash, an eviction, a restart or an update); while
 * one is held the instance is not stopped for being idle, and the gateway renews at once after a crash
 * (which starts the instance again).
 *
 * A shared instance (one process for every organization) gets each organization's subscribe with that
 * organization in `_meta`, and an unsubscribe only when no organization holds the URI any more (a plugin
 * that ignores `_meta` keeps serving the others). Its resources/updated reaches every organization holding
 * the URI, or only the one it names in `_meta["hay/orgId"]`.
 */
export class ResourceSubscriptions {
  private readonly byResource = new Map<string, Set<Subscriber>>();
  /** `<pluginId>\u0000<uri>` -> organizations holding it (for a shared instance's notifications). */
  private readonly orgsByResource = new Map<string, Set<string>>();
  /** Keys whose plugin-side subscription was made on a shared instance. */
  private readonly onShared = new Set<string>();
  /** `<orgId or SHARED_INSTANCE_ORG>\u0000<pluginId>` -> the renewal running on that instance. */
  private readonly renewing = new Map<string, Promise<void>>();

  constructor(private readonly d: { plugins: PluginService; logger: Logger; maxPerSession: number }) {}

  /**
   * For an instance's notifications/resources/updated of its own `uri`: `orgId` is the instance's
   * organization, SHARED_INSTANCE_ORG for a shared one (then `forOrgId`, if set, narrows it to that one).
   */
  updated(orgId: string, pluginId: string, uri: string, forOrgId?: string): void {
    const orgs =
      orgId !== SHARED_INSTANCE_ORG
        ? [orgId]
        : forOrgId !== undefined
          ? [forOrgId]
          : [...(this.orgsByResource.get(resourceKey(pluginId, uri)) ?? [])];
    for (const o of orgs) for (const s of this.byResource.get(key(o, pluginId, uri)) ?? []) s.notify(s.asked);
  }

  /**
   * The plugin's instance serving `orgId` (undefined: a shared instance, serving every organization) is
   * running again and knows none of the subscriptions held on it: subscribes again to each URI held,
   * one after the other, as one of the sessions holding it. A failure is logged and leaves the sessions
   * subscribed (the next running instance is asked again). Never rejects.
   */
  renew(orgId: string | undefined, pluginId: string): Promise<void> {
    // a renewal in flight for the same instance (e.g. one that restarted it after a crash) covers this one
    const instance = `${orgId ?? SHARED_INSTANCE_ORG}\u0000${pluginId}`;
    const running = this.renewing.get(instance);
    if (running) return running;
    const held: { orgId: string; uri: string; caller: Caller }[] = [];
    for (const [k, set] of this.byResource) {
      const [o = '', p, ...rest] = k.split('\u0000');
      const first = set.values().next();
      if (p !== pluginId || (orgId !== undefined && o !== orgId) || first.done) continue;
      held.push({ orgId: o, uri: rest.join('\u0000'), caller: first.value.caller });
    }
    if (held.length === 0) return Promise.resolve();
    const renewal = (async () => {
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
    })().finally(() => this.renewing.delete(instance));
    this.renewing.set(instance, renewal);
    return renewal;
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
        const rk = resourceKey(held.pluginId, held.uri);
        const orgs = this.orgsByResource.get(rk);
        orgs?.delete(orgId);
        if (orgs?.size === 0) this.orgsByResource.delete(rk);
        const shared = this.onShared.delete(k);
        // a shared instance's subscription stays while another organization holds the URI
        if (shared && orgs !== undefined && orgs.size > 0) return;
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
        if (!set) {
          const { shared } = await this.d.plugins.subscribeResource(caller, pluginId, uri, true);
          if (shared) this.onShared.add(k);
        }
        set = this.byResource.get(k) ?? new Set();
        this.byResource.set(k, set);
        set.add(sub);
        const rk = resourceKey(pluginId, uri);
        let orgs = this.orgsByResource.get(rk);
        if (!orgs) this.orgsByResource.set(rk, (orgs = new Set()));
        orgs.add(orgId);
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

function resourceKey(pluginId: string, uri: string): string {
  return `${pluginId}\u0000${uri}`;
}
