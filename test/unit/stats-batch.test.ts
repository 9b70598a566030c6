import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FinishedRequest } from '../../src/observe/records.ts';
import { bytesSavedBy, StatsBatch } from '../../src/stats/batch.ts';
import { DAY_MS, MINUTE_MS } from '../../src/stats/time.ts';

/** A finished request with test defaults. */
function request(overrides: Partial<FinishedRequest> = {}): FinishedRequest {
  return {
    kind: 'crate',
    outcome: 'hit',
    upstreamBytes: 0,
    method: 'GET',
    url: '/api/v1/crates/serde/1.0.0/download',
    status: 200,
    bytesSent: 1000,
    durationMs: 2,
    ttfbMs: 1,
    crate: { name: 'serde', version: '1.0.0' },
    ...overrides,
  };
}

describe('bytesSavedBy', () => {
  const cases: [string, Parameters<typeof bytesSavedBy>[0], number][] = [
    [
      'a hit saves everything sent',
      { outcome: 'hit', status: 200, bytesSent: 500, upstreamBytes: 0 },
      500,
    ],
    [
      'a miss saves nothing',
      { outcome: 'miss', status: 200, bytesSent: 500, upstreamBytes: 500 },
      0,
    ],
    [
      'a revalidation (304 upstream) saves the body',
      { outcome: 'revalidated', status: 200, bytesSent: 300, upstreamBytes: 0 },
      300,
    ],
    [
      'gzip smaller than upstream never goes negative',
      { outcome: 'miss', status: 200, bytesSent: 100, upstreamBytes: 400 },
      0,
    ],
    [
      'a 304 to the client sent nothing',
      { outcome: 'hit', status: 304, bytesSent: 0, upstreamBytes: 0 },
      0,
    ],
    ['errors save nothing', { outcome: 'error', status: 200, bytesSent: 50, upstreamBytes: 0 }, 0],
    [
      'not found saves nothing',
      { outcome: 'not-found', status: 404, bytesSent: 80, upstreamBytes: 0 },
      0,
    ],
  ];
  for (const [name, record, expected] of cases) {
    test(name, () => assert.equal(bytesSavedBy(record), expected));
  }
});

describe('StatsBatch', () => {
  const t0 = Date.UTC(2026, 0, 10, 12, 30, 15);

  test('adds requests of the same minute, kind and outcome into one row', () => {
    const batch = new StatsBatch();
    for (let i = 0; i < 10_000; i += 1) batch.addRequest(request(), t0 + (i % 40) * 1000);
    assert.equal(batch.requests.size, 1);
    const [row] = [...batch.requests.values()];
    assert.equal(row?.requests, 10_000);
    assert.equal(row?.bytesSent, 10_000_000);
    assert.equal(row?.bytesSaved, 10_000_000);
    assert.equal(batch.crates.get('serde@1.0.0')?.downloads, 10_000);
    assert.equal(batch.size, 10_000);
  });

  test('splits rows by minute and rolls them up per UTC day', () => {
    const batch = new StatsBatch();
    batch.addRequest(request(), t0);
    batch.addRequest(request(), t0 + MINUTE_MS);
    batch.addRequest(request({ outcome: 'miss', upstreamBytes: 1000 }), t0 + 2 * MINUTE_MS);
    batch.addRequest(request(), t0 + DAY_MS);
    assert.equal(batch.requests.size, 4);
    const days = batch
      .requestDays()
      .sort((a, b) => a.bucket - b.bucket || a.outcome.localeCompare(b.outcome));
    assert.deepEqual(
      days.map((d) => [d.bucket - Math.floor(t0 / DAY_MS), d.outcome, d.requests, d.bytesSaved]),
      [
        [0, 'hit', 2, 2000],
        [0, 'miss', 1, 0],
        [1, 'hit', 1, 1000],
      ],
    );
  });

  test('ignores the API, the dashboard and unknown routes', () => {
    const batch = new StatsBatch();
    batch.addRequest(request({ kind: 'api', outcome: undefined }), t0);
    batch.addRequest(request({ kind: 'other', outcome: 'not-found', status: 404 }), t0);
    assert.equal(batch.size, 0);
    assert.equal(batch.requests.size, 0);
  });

  test('counts only 200 answers as crate downloads', () => {
    const batch = new StatsBatch();
    batch.addRequest(request({ status: 304, bytesSent: 0 }), t0);
    batch.addRequest(request({ outcome: 'not-found', status: 404, crate: undefined }), t0);
    assert.equal(batch.crates.size, 0);
  });

  test('keeps misses and errors as bounded events, with the crate or path as target', () => {
    const batch = new StatsBatch(3);
    batch.addRequest(request({ outcome: 'miss' }), t0);
    batch.addRequest(
      request({
        kind: 'sparse-index',
        outcome: 'error',
        status: 502,
        crate: undefined,
        url: '/index/se/rd/serde?x=1',
        errorCode: 'CARGO_CACHER_UPSTREAM_STATUS',
      }),
      t0 + 1,
    );
    assert.deepEqual(
      batch.events.map((e) => [e.type, e.target, e.detail]),
      [
        ['miss', 'serde@1.0.0', null],
        ['error', '/index/se/rd/serde', 'CARGO_CACHER_UPSTREAM_STATUS'],
      ],
    );
    for (let i = 0; i < 5; i += 1) batch.addRequest(request({ outcome: 'miss' }), t0 + 10 + i);
    assert.equal(batch.events.filter((e) => e.type === 'miss').length, 3);
    assert.equal(batch.events.filter((e) => e.type === 'error').length, 1, 'misses keep errors');
    assert.equal(batch.events.at(-1)?.at, t0 + 14);
  });

  test('tracks upstream requests, failures by reason and the last state per source', () => {
    const batch = new StatsBatch();
    const url = 'https://static.crates.io/crates/serde/1.0.0/download';
    batch.addUpstream({ source: 'crate', url, status: 200, latencyMs: 40 }, t0);
    batch.addUpstream(
      {
        source: 'crate',
        url,
        status: 503,
        latencyMs: 10,
        failure: 'http-5xx',
        detail: 'upstream answered 503',
      },
      t0 + 1,
    );
    batch.addUpstream(
      {
        source: 'crate',
        url,
        status: 200,
        latencyMs: 0,
        failure: 'body',
        detail: 'socket hang up',
      },
      t0 + 2,
    );
    const [row] = [...batch.upstream.values()];
    assert.deepEqual(
      {
        requests: row?.requests,
        failures: row?.failures,
        latencyMs: row?.latencyMs,
        max: row?.latencyMaxMs,
      },
      { requests: 2, failures: 2, latencyMs: 50, max: 40 },
    );
    assert.deepEqual([...batch.failures.values()].map((f) => [f.reason, f.failures]).sort(), [
      ['body', 1],
      ['http-5xx', 1],
    ]);
    assert.deepEqual(batch.sources.get('crate'), {
      lastSuccessAt: t0,
      lastFailureAt: t0 + 2,
      lastError: 'socket hang up',
    });
    assert.equal(batch.events.filter((e) => e.type === 'upstream').length, 2);
  });
});
