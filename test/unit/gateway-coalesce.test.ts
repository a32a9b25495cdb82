import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyedCoalescer } from '../../src/gateway/coalesce.js';

describe('KeyedCoalescer (resources/updated per session and URI)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends the first at once and any number within the window as one at its end, per key', () => {
    const sent: string[] = [];
    const c = new KeyedCoalescer(
      250,
      (k) => sent.push(k),
      () => Date.now(),
    );
    for (let i = 0; i < 1_000; i++) c.push('a');
    c.push('b');
    expect(sent).toEqual(['a', 'b']);
    expect(c.pending).toBe(1);
    vi.advanceTimersByTime(250);
    expect(sent).toEqual(['a', 'b', 'a']);
    expect(c.pending).toBe(0);
    // within the window that trailing send opened: coalesced again
    c.push('a');
    expect(sent).toHaveLength(3);
    vi.advanceTimersByTime(250);
    expect(sent).toEqual(['a', 'b', 'a', 'a']);
    // after a quiet window: at once
    vi.advanceTimersByTime(1_000);
    c.push('a');
    expect(sent).toHaveLength(5);
    c.close();
  });

  it('close() cancels what is pending and sends nothing more', () => {
    const sent: string[] = [];
    const c = new KeyedCoalescer(
      250,
      (k) => sent.push(k),
      () => Date.now(),
    );
    c.push('a');
    c.push('a');
    expect(c.pending).toBe(1);
    c.close();
    expect(c.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    c.push('a');
    expect(sent).toEqual(['a']);
  });
});
