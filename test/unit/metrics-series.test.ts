import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.js';

const collect = { activeInstances: () => [], queueDepth: () => [], usage: async () => [] };

describe('Metrics series ceiling', () => {
  it('collapses new (plugin, tool) pairs beyond maxSeries into _overflow and counts them', async () => {
    const m = new Metrics(collect, { maxSeries: 10 });
    for (let i = 0; i < 100; i++) m.recordCall(`p${i}`, `t${i}`, 'ok', 0.001);
    // pairs admitted before the ceiling keep their labels
    m.recordCall('p3', 't3', 'ok', 0.001);
    const text = await m.registry.metrics();
    expect(text).toContain('hay_tool_invocations_total{plugin="p3",tool="t3",outcome="ok"} 2');
    expect(text).toContain('hay_tool_invocations_total{plugin="_overflow",tool="_overflow",outcome="ok"} 90');
    expect(text).not.toContain('plugin="p10"');
    expect(text).toContain('hay_metrics_series_overflow_total 90');
  });

  it('cache lookups and rate-limit counts share the ceiling', async () => {
    const m = new Metrics(collect, { maxSeries: 2 });
    m.recordCacheLookup('a', true);
    m.recordRateLimited('b', 'plugin');
    m.recordRateLimited('c', 'plugin');
    const text = await m.registry.metrics();
    expect(text).toContain('hay_rate_limited_total{plugin="_overflow",scope="plugin"} 1');
    expect(text).toContain('hay_tool_cache_lookups_total{plugin="a",result="hit"} 1');
  });
});
