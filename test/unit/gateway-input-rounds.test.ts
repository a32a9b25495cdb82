import { describe, expect, it } from 'vitest';
import { InputRounds, type RoundTarget } from '../../src/gateway/input-rounds.js';

const alice = { organizationId: 'org-a', actor: 'key:a', keyId: 'key-a' };
const mallory = { organizationId: 'org-b', actor: 'key:b', keyId: 'key-b' };
const sampling = { method: 'sampling/createMessage' as const, params: { messages: [], maxTokens: 1 } };

function target(refuse?: string): RoundTarget {
  return { signal: new AbortController().signal, refuses: () => refuse };
}

describe('InputRounds (server-to-client requests of /mcp calls as multi round-trip results)', () => {
  it('embeds the plugin’s request, then hands the retry’s response to it and returns the result', async () => {
    const rounds = new InputRounds({ maxWaitingPerOrg: 10, roundTimeoutMs: 60_000 });
    const first = await rounds.begin(alice, target(), async (hooks) => {
      const answer = await hooks.onServerRequest(sampling, new AbortController().signal);
      return `plugin got ${JSON.stringify(answer)}`;
    });
    expect(first.kind).toBe('input');
    if (first.kind !== 'input') return;
    const [key] = Object.keys(first.result.inputRequests ?? {});
    expect(first.result.inputRequests?.[key ?? '']).toEqual(sampling);
    expect(rounds.waiting('org-a')).toBe(1);
    const second = await rounds.resume(
      alice,
      first.result.requestState ?? '',
      { [key ?? '']: { ok: 1 } },
      target(),
    );
    expect(second).toEqual({ kind: 'done', value: 'plugin got {"ok":1}' });
    expect(rounds.waiting()).toBe(0);
    rounds.close();
  });

  it('binds requestState to the key that began the call: another key gets nothing', async () => {
    const rounds = new InputRounds({ maxWaitingPerOrg: 10, roundTimeoutMs: 60_000 });
    const first = await rounds.begin(alice, target(), (hooks) =>
      hooks.onServerRequest(sampling, new AbortController().signal),
    );
    if (first.kind !== 'input') throw new Error('expected input');
    const state = first.result.requestState ?? '';
    expect(state.length).toBeGreaterThanOrEqual(22);
    expect(rounds.resume(mallory, state, {}, target())).toBeUndefined();
    expect(rounds.resume({ ...alice, keyId: 'other' }, state, {}, target())).toBeUndefined();
    expect(rounds.resume(alice, 'forged', {}, target())).toBeUndefined();
    rounds.close();
  });

  it('draws one requestState per waiting call, kept across its rounds, and none for a call that never waits', async () => {
    const rounds = new InputRounds({ maxWaitingPerOrg: 10, roundTimeoutMs: 60_000 });
    expect(await rounds.begin(alice, target(), () => Promise.resolve('at once'))).toEqual({
      kind: 'done',
      value: 'at once',
    });
    expect(rounds.waiting()).toBe(0);
    const asksTwice = (hooks: Parameters<Parameters<InputRounds['begin']>[2]>[0]) =>
      hooks
        .onServerRequest(sampling, new AbortController().signal)
        .then(() => hooks.onServerRequest(sampling, new AbortController().signal));
    const first = await rounds.begin(alice, target(), asksTwice);
    const other = await rounds.begin(alice, target(), asksTwice);
    if (first.kind !== 'input' || other.kind !== 'input') throw new Error('expected input');
    const state = first.result.requestState ?? '';
    expect(other.result.requestState).not.toBe(state);
    const [key] = Object.keys(first.result.inputRequests ?? {});
    const second = await rounds.resume(alice, state, { [key ?? '']: { ok: 1 } }, target());
    if (second?.kind !== 'input') throw new Error('expected a second input round');
    expect(second.result.requestState).toBe(state);
    expect(rounds.waiting('org-a')).toBe(2);
    rounds.close();
  });

  it('refuses at once what the client cannot answer, with the reason, and the call goes on', async () => {
    const rounds = new InputRounds({ maxWaitingPerOrg: 10, roundTimeoutMs: 60_000 });
    const out = await rounds.begin(alice, target('no sampling here'), async (hooks) => {
      try {
        await hooks.onServerRequest(sampling, new AbortController().signal);
        return 'answered';
      } catch (err) {
        return `refused: ${(err as Error).message}`;
      }
    });
    expect(out).toEqual({ kind: 'done', value: 'refused: no sampling here' });
  });

  it('cancels a call whose client does not come back within roundTimeoutMs', async () => {
    const rounds = new InputRounds({ maxWaitingPerOrg: 10, roundTimeoutMs: 50 });
    let aborted: unknown;
    const first = await rounds.begin(alice, target(), async (hooks) => {
      hooks.signal.addEventListener('abort', () => (aborted = hooks.signal.reason));
      return hooks.onServerRequest(sampling, hooks.signal);
    });
    expect(first.kind).toBe('input');
    await new Promise((r) => setTimeout(r, 150));
    expect(String(aborted)).toMatch(/did not answer the input request in time/);
    expect(rounds.waiting()).toBe(0);
  });

  it('bounds the calls waiting for input per organization', async () => {
    const rounds = new InputRounds({ maxWaitingPerOrg: 1, roundTimeoutMs: 60_000 });
    const ask = () =>
      rounds.begin(alice, target(), async (hooks) => {
        try {
          return await hooks.onServerRequest(sampling, new AbortController().signal);
        } catch (err) {
          return (err as Error).message;
        }
      });
    expect((await ask()).kind).toBe('input');
    expect(await ask()).toEqual({ kind: 'done', value: expect.stringMatching(/too many calls/) });
    rounds.close();
  });

  it('bounds the requests one call may leave waiting: a plugin asking in a loop gets the rest refused', async () => {
    const rounds = new InputRounds({ maxWaitingPerOrg: 10, roundTimeoutMs: 60_000, maxPendingPerCall: 4 });
    const refused: string[] = [];
    const first = await rounds.begin(alice, target(), async (hooks) => {
      const asks = Array.from({ length: 1000 }, () =>
        hooks.onServerRequest(sampling, new AbortController().signal).catch((err: Error) => {
          refused.push(err.message);
        }),
      );
      await Promise.all(asks);
    });
    if (first.kind !== 'input') throw new Error('expected input');
    expect(Object.keys(first.result.inputRequests ?? {})).toHaveLength(4);
    await Promise.resolve();
    expect(refused).toHaveLength(996);
    expect(refused[0]).toMatch(/limit 4/);
    rounds.close();
  });
});
