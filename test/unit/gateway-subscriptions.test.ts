import { describe, expect, it } from 'vitest';
import { ResourceSubscriptions } from '../../src/gateway/subscriptions.js';
import type { Caller, PluginService } from '../../src/invocation/plugin-service.js';
import { createLogger } from '../../src/logger.js';

const caller = (org: string): Caller => ({ organizationId: org, actor: 'key:x', keyId: `k-${org}` });

function setup(maxPerSession = 2) {
  const calls: string[] = [];
  const plugins = {
    subscribeResource: (c: Caller, pluginId: string, uri: string, on: boolean) => {
      calls.push(`${c.organizationId} ${on ? 'sub' : 'unsub'} ${pluginId} ${uri}`);
      return Promise.resolve({ shared: false });
    },
  } as unknown as PluginService;
  const subs = new ResourceSubscriptions({
    plugins,
    logger: createLogger({ level: 'silent' }),
    maxPerSession,
  });
  return { calls, subs };
}

describe('ResourceSubscriptions', () => {
  it('bounds subscriptions per session and keeps organizations apart', async () => {
    const { calls, subs } = setup(2);
    const gotA: string[] = [];
    const gotB: string[] = [];
    const a = subs.session(caller('A'), (u) => gotA.push(u));
    const b = subs.session(caller('B'), (u) => gotB.push(u));
    expect(await a.subscribe('p', 'x://1', 'hay://p/x://1')).toBe(true);
    expect(await a.subscribe('p', 'x://1', 'hay://p/x://1')).toBe(true);
    expect(await a.subscribe('p', 'x://2', 'x://2')).toBe(true);
    expect(await a.subscribe('p', 'x://3', 'x://3')).toBe(false);
    expect(await b.subscribe('p', 'x://1', 'x://1')).toBe(true);
    expect(calls).toEqual(['A sub p x://1', 'A sub p x://2', 'B sub p x://1']);
    subs.updated('A', 'p', 'x://1');
    expect(gotA).toEqual(['hay://p/x://1']);
    expect(gotB).toEqual([]);
    a.close();
    b.close();
    await new Promise((r) => setImmediate(r));
    expect(subs.count()).toBe(0);
    expect(calls.filter((c) => c.includes('unsub'))).toHaveLength(3);
  });

  it('renews held subscriptions on a running-again instance: its organization only, or every one when shared', async () => {
    const { calls, subs } = setup(3);
    const a = subs.session(caller('A'), () => undefined);
    const a2 = subs.session(caller('A'), () => undefined);
    const b = subs.session(caller('B'), () => undefined);
    await a.subscribe('p', 'x://1', 'x://1');
    await a2.subscribe('p', 'x://1', 'x://1');
    await a.subscribe('p', 'x://2', 'x://2');
    await a.subscribe('q', 'y://1', 'y://1');
    await b.subscribe('p', 'x://1', 'x://1');
    await a.unsubscribe('p', 'x://2');
    calls.length = 0;
    await subs.renew('A', 'p');
    // one plugin-side subscription per URI however many sessions hold it; nothing for a dropped URI
    expect(calls).toEqual(['A sub p x://1']);
    calls.length = 0;
    await subs.renew(undefined, 'p');
    expect(calls.sort()).toEqual(['A sub p x://1', 'B sub p x://1']);
    a.close();
    a2.close();
    b.close();
  });

  it('a failed renewal leaves the sessions subscribed and does not reject', async () => {
    let up = true;
    const plugins = {
      subscribeResource: () => (up ? Promise.resolve({ shared: false }) : Promise.reject(new Error('gone'))),
    } as unknown as PluginService;
    const subs = new ResourceSubscriptions({
      plugins,
      logger: createLogger({ level: 'silent' }),
      maxPerSession: 2,
    });
    const got: string[] = [];
    const a = subs.session(caller('A'), (u) => got.push(u));
    await a.subscribe('p', 'x://1', 'x://1');
    up = false;
    await expect(subs.renew('A', 'p')).resolves.toBeUndefined();
    expect(subs.count()).toBe(1);
    subs.updated('A', 'p', 'x://1');
    expect(got).toEqual(['x://1']);
    a.close();
  });
});
