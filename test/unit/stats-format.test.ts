import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  formatAgo,
  formatBytes,
  formatCount,
  formatMs,
  formatPercent,
  sparkline,
} from '../../src/stats/format.ts';
import { bucketed } from '../../src/stats/text-report.ts';

describe('formatBytes', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [999, '999 B'],
    [1000, '1.00 kB'],
    [1234, '1.23 kB'],
    [45_600_000, '45.6 MB'],
    [999_499_999, '999 MB'],
    [1_500_000_000, '1.50 GB'],
    [2.5e15, '2.50 PB'],
    [3e18, '3000 PB'],
  ];
  for (const [bytes, expected] of cases) {
    test(`${bytes} → ${expected}`, () => assert.equal(formatBytes(bytes), expected));
  }
});

describe('other formats', () => {
  test('counts have thousands separators', () => {
    assert.equal(formatCount(1234567), '1,234,567');
    assert.equal(formatCount(0), '0');
  });

  test('percentages have one decimal, and a dash before any request', () => {
    assert.equal(formatPercent(0.875), '87.5%');
    assert.equal(formatPercent(1), '100.0%');
    assert.equal(formatPercent(null), '–');
  });

  test('ages read naturally', () => {
    const now = 10_000_000;
    assert.equal(formatAgo(null, now), 'never');
    assert.equal(formatAgo(now - 1000, now), 'just now');
    assert.equal(formatAgo(now - 30_000, now), '30 s ago');
    assert.equal(formatAgo(now - 5 * 60_000, now), '5 min ago');
    assert.equal(formatAgo(now - 3 * 3_600_000, now), '3 h ago');
    assert.equal(formatAgo(now - 2 * 86_400_000, now), '2 d ago');
  });

  test('latencies', () => {
    assert.equal(formatMs(null), '–');
    assert.equal(formatMs(0.84), '0.8 ms');
    assert.equal(formatMs(45.4), '45 ms');
  });

  test('sparklines scale to the largest value and leave zero blank', () => {
    assert.equal(sparkline([0, 1, 4, 8]), ' ▁▄█');
    assert.equal(sparkline([0, 0]), '  ');
  });

  test('bucketing sums neighbours so a long series fits', () => {
    assert.deepEqual(bucketed([1, 2, 3], 5), [1, 2, 3]);
    assert.deepEqual(bucketed([1, 1, 1, 1, 1, 1, 1], 3), [3, 3, 1]);
  });
});
