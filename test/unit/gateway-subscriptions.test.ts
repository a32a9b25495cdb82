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
      return Promise.resolve();
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
});
