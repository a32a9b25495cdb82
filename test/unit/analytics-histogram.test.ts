import { describe, expect, it } from 'vitest';
import {
  BOUNDS_MS,
  BUCKETS,
  addBuckets,
  bucketOf,
  emptyBuckets,
  quantile,
} from '../../src/analytics/histogram.js';

describe('latency histogram', () => {
  it('puts a latency in the first bucket whose bound is >= it', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(1)).toBe(0);
    expect(bucketOf(1.01)).toBe(1);
    expect(bucketOf(100)).toBe(BOUNDS_MS.indexOf(100));
    expect(bucketOf(10 ** 9)).toBe(BUCKETS - 1);
  });

  it('merged histograms give the percentiles of the combined calls', () => {
    const a = emptyBuckets();
    const b = emptyBuckets();
    for (let i = 0; i < 90; i++) a[bucketOf(3)]!++;
    for (let i = 0; i < 10; i++) b[bucketOf(400)]!++;
    const merged = addBuckets(emptyBuckets(), a);
    addBuckets(merged, b);
    expect(quantile(merged, 0.5)).toBeGreaterThan(2);
    expect(quantile(merged, 0.5)).toBeLessThanOrEqual(5);
    expect(quantile(merged, 0.99)).toBeGreaterThan(250);
    expect(quantile(merged, 0.99)).toBeLessThanOrEqual(500);
    expect(quantile(emptyBuckets(), 0.5)).toBeNull();
  });
});
