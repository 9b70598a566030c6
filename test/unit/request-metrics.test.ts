import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FinishedRequest } from '../../src/observe/records.ts';
import { Metrics } from '../../src/stats/metrics.ts';
import { parseExposition, sampleValue } from '../helpers/prometheus.ts';

function finished(overrides: Partial<FinishedRequest>): FinishedRequest {
  return {
    kind: 'sparse-index',
    outcome: 'hit',
    upstreamBytes: 0,
    method: 'GET',
    url: '/index/3/f/foo',
    status: 200,
    bytesSent: 100,
    durationMs: 1,
    ...overrides,
  };
}

test('request counters and histograms add up per kind in the exposition', async () => {
  const metrics = new Metrics();
  metrics.observeRequest(finished({ durationMs: 0.5 }));
  metrics.observeRequest(finished({ durationMs: 20, ttfbMs: 3 }));
  metrics.observeRequest(finished({ durationMs: 2000, outcome: 'miss', upstreamBytes: 60 }));
  metrics.observeRequest(
    finished({ kind: 'crate', durationMs: 7, bytesSent: 5000, url: '/api/v1/crates/a/1/download' }),
  );
  // parseExposition checks every histogram: cumulative buckets, +Inf equal to _count. Only
  // cargo-cacher's families: prom-client's event loop lag reads `Nan` until it has a sample.
  const ours = (await metrics.text()).split('\n').filter((line) => line.includes('cargo_cacher_'));
  const families = parseExposition(`${ours.join('\n')}\n`);
  const value = (name: string, labels: Record<string, string>) =>
    sampleValue(families, name, labels);
  const index = { kind: 'sparse-index' };
  assert.equal(value('cargo_cacher_requests_total', { ...index, outcome: 'hit' }), 2);
  assert.equal(value('cargo_cacher_requests_total', { ...index, outcome: 'miss' }), 1);
  assert.equal(value('cargo_cacher_sent_bytes_total', index), 300);
  assert.equal(value('cargo_cacher_upstream_bytes_total', index), 60);
  assert.equal(value('cargo_cacher_saved_bytes_total', index), 240);
  const duration = 'cargo_cacher_request_duration_seconds';
  assert.equal(value(`${duration}_bucket`, { ...index, le: '0.001' }), 1);
  assert.equal(value(`${duration}_bucket`, { ...index, le: '0.025' }), 2);
  assert.equal(value(`${duration}_bucket`, { ...index, le: '2.5' }), 3);
  assert.equal(value(`${duration}_bucket`, { ...index, le: '+Inf' }), 3);
  assert.equal(value(`${duration}_count`, index), 3);
  assert.ok(Math.abs((value(`${duration}_sum`, index) ?? 0) - 2.0205) < 1e-9);
  // Time to first byte falls back to the duration when the request did not record one.
  const ttfb = 'cargo_cacher_time_to_first_byte_seconds';
  assert.equal(value(`${ttfb}_bucket`, { ...index, le: '0.005' }), 2);
  assert.equal(value(`${ttfb}_bucket`, { kind: 'crate', le: '0.01' }), 1);
  assert.equal(value(`${ttfb}_bucket`, { kind: 'crate', le: '0.005' }), 0);
  assert.equal(value('cargo_cacher_sent_bytes_total', { kind: 'crate' }), 5000);
});
