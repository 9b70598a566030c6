import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { StatsSummary } from '../../src/stats/summary.ts';
import type { FakeUpstream } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { parseExposition, sampleValue } from '../helpers/prometheus.ts';
import { type ProxyOptions, type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const CRATES = [
  { name: 'fake-a', version: '0.1.0' },
  { name: 'fake-b', version: '0.2.0', padBytes: 20_000 },
];

async function upstreamFor(t: TestContext): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  return upstream;
}

async function proxyFor(t: TestContext, options: ProxyOptions): Promise<RunningProxy> {
  const proxy = await startProxy(options);
  t.after(() => proxy.close());
  return proxy;
}

/** Downloads a crate through the proxy `times` times, checking each body. */
async function download(proxy: RunningProxy, upstream: FakeUpstream, name: string, times = 1) {
  const { version, bytes } = upstream.crate(
    name,
    CRATES.find((c) => c.name === name)?.version ?? '',
  );
  for (let i = 0; i < times; i += 1) {
    const response = await httpGet(`${proxy.url}/api/v1/crates/${name}/${version}/download`);
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(bytes));
  }
}

/**
 * The summary once it counts `requests` requests. The response hook that records a request
 * runs when the server has handed the last byte to the kernel, which can be a moment after
 * the client read it and sent its next request.
 */
async function statsWhen(proxy: RunningProxy, requests: number): Promise<StatsSummary> {
  for (let attempt = 0; ; attempt += 1) {
    const stats = await getJson<StatsSummary>(`${proxy.url}/api/v1/stats`);
    if (stats.totals.requests >= requests || attempt === 40) return stats;
    await delay(25);
  }
}

async function getJson<T>(url: string): Promise<T> {
  const response = await httpGet(url);
  assert.equal(response.status, 200, response.body.toString());
  assert.match(String(response.headers['content-type']), /^application\/json/);
  return JSON.parse(response.body.toString()) as T;
}

describe('statistics', () => {
  test('counts hits, misses and bytes as the requests happened, across a restart', async (t) => {
    const upstream = await upstreamFor(t);
    const storageDir = await makeTempDir('stats-restart');
    t.after(() => removeTempDir(storageDir));
    const a = upstream.crate('fake-a', '0.1.0').bytes.length;
    const b = upstream.crate('fake-b', '0.2.0').bytes.length;

    const first = await startProxy({ upstream, storageDir });
    await download(first, upstream, 'fake-a', 6); // 1 miss, 5 hits
    await download(first, upstream, 'fake-b', 3); // 1 miss, 2 hits
    assert.equal((await httpGet(`${first.url}/index/fa/ke/fake-a`)).status, 200);
    assert.equal((await httpGet(`${first.url}/index/no/ne/none-such`)).status, 404);
    let stats = await statsWhen(first, 11);
    const crate = stats.byKind.crate;
    assert.deepEqual(
      [crate?.requests, crate?.hits, crate?.misses, crate?.bytesSent],
      [9, 7, 2, 6 * a + 3 * b],
    );
    assert.equal(crate?.bytesUpstream, a + b);
    assert.equal(crate?.bytesSaved, 5 * a + 2 * b);
    assert.equal(stats.byKind['sparse-index']?.requests, 2);
    assert.equal(stats.byKind['sparse-index']?.notFound, 1);
    assert.equal(stats.totals.crateDownloads, 9);
    assert.deepEqual(
      stats.topCrates.map((c) => [c.name, c.downloads]),
      [
        ['fake-a', 6],
        ['fake-b', 3],
      ],
    );
    assert.deepEqual(stats.cache.crates, { objects: 2, bytes: a + b });
    assert.equal(stats.upstream.sources.find((s) => s.source === 'crate')?.requests, 2);
    assert.deepEqual(stats.recent.misses.map((e) => e.target).sort(), [
      'fake-a@0.1.0',
      'fake-b@0.2.0',
    ]);
    await first.close();

    const second = await proxyFor(t, { upstream, storageDir });
    await download(second, upstream, 'fake-b', 3); // 3 hits
    stats = await statsWhen(second, 14);
    assert.equal(stats.byKind.crate?.hits, 10);
    assert.equal(stats.byKind.crate?.misses, 2);
    assert.equal(stats.totals.crateDownloads, 12);
    assert.equal(stats.totals.hitRatio, (10 + 1) / (10 + 1 + 2));
    const seed = await getJson<Record<string, number>>(`${second.url}/stats.json`);
    assert.deepEqual(seed, { downloads: 12, hits: 10, misses: 2, bandwidth_saved: 5 * a + 5 * b });
  });

  test('/stats.json keeps the seed shape: four whole numbers', async (t) => {
    const upstream = await upstreamFor(t);
    const proxy = await proxyFor(t, { upstream });
    const empty = await getJson<Record<string, unknown>>(`${proxy.url}/stats.json`);
    assert.deepEqual(empty, { downloads: 0, hits: 0, misses: 0, bandwidth_saved: 0 });
    await download(proxy, upstream, 'fake-a', 2);
    await statsWhen(proxy, 2);
    const seed = await getJson<Record<string, unknown>>(`${proxy.url}/stats.json`);
    assert.deepEqual(Object.keys(seed).sort(), ['bandwidth_saved', 'downloads', 'hits', 'misses']);
    for (const value of Object.values(seed)) assert.ok(Number.isSafeInteger(value), String(value));
    assert.equal(seed.downloads, 2);
  });

  test('10,000 hits are written in a handful of transactions, not one per request', async (t) => {
    const upstream = await upstreamFor(t);
    const proxy = await proxyFor(t, { upstream });
    await download(proxy, upstream, 'fake-a');
    const { stats } = proxy.instance;
    stats.recorder.flush();
    const before = stats.db.transactions;
    const started = performance.now();
    const url = '/api/v1/crates/fake-a/0.1.0/download';
    for (let done = 0; done < 10_000; done += 100) {
      const batch = Array.from({ length: 100 }, () => proxy.app.inject({ method: 'GET', url }));
      for (const response of await Promise.all(batch)) assert.equal(response.statusCode, 200);
    }
    const seconds = (performance.now() - started) / 1000;
    const summary = await stats.summary();
    const transactions = stats.db.transactions - before;
    t.diagnostic(`10,000 hits in ${seconds.toFixed(1)} s: ${transactions} transactions`);
    assert.equal(summary.byKind.crate?.hits, 10_000);
    // One flush per second of the burst, plus the one the summary makes.
    assert.ok(transactions <= Math.ceil(seconds) + 2, `${transactions} transactions`);
  });

  test('/metrics is valid Prometheus text with HELP and TYPE, every sample line checked', async (t) => {
    const upstream = await upstreamFor(t);
    const gitDir = await makeTempDir('stats-git');
    t.after(() => removeTempDir(gitDir));
    const proxy = await proxyFor(t, { upstream, gitUrl: await upstream.enableGit(gitDir) });
    const git = proxy.deps.git;
    assert.ok(git);
    for (let i = 0; git.status().lastSuccessAt === undefined; i += 1) {
      assert.ok(i < 400, 'the git mirror never became ready');
      await delay(50);
    }
    await download(proxy, upstream, 'fake-a', 3);
    upstream.setFault({ kind: 'status', status: 503 }, 'crate');
    const failed = await httpGet(`${proxy.url}/api/v1/crates/fake-b/0.2.0/download`);
    assert.ok(failed.status >= 500);
    upstream.setFault(undefined);
    await statsWhen(proxy, 4);

    const response = await httpGet(`${proxy.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const families = parseExposition(response.body.toString());
    for (const family of families.values()) {
      assert.match(family.name, /^(cargo_cacher_|process_|nodejs_)/, family.name);
      assert.ok(family.help, `${family.name} has HELP`);
      assert.ok(family.type, `${family.name} has TYPE`);
    }
    const expected = {
      cargo_cacher_requests_total: 'counter',
      cargo_cacher_request_duration_seconds: 'histogram',
      cargo_cacher_time_to_first_byte_seconds: 'histogram',
      cargo_cacher_sent_bytes_total: 'counter',
      cargo_cacher_upstream_bytes_total: 'counter',
      cargo_cacher_saved_bytes_total: 'counter',
      cargo_cacher_upstream_requests_total: 'counter',
      cargo_cacher_upstream_errors_total: 'counter',
      cargo_cacher_upstream_latency_seconds: 'histogram',
      cargo_cacher_cache_size_bytes: 'gauge',
      cargo_cacher_cache_objects: 'gauge',
      cargo_cacher_inflight_fetches: 'gauge',
      cargo_cacher_git_index_ready: 'gauge',
      cargo_cacher_git_index_age_seconds: 'gauge',
      cargo_cacher_jobs_running: 'gauge',
      cargo_cacher_job_packages_done: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) {
      assert.equal(families.get(name)?.type, type, name);
    }
    const a = upstream.crate('fake-a', '0.1.0').bytes.length;
    const value = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(families, name, labels);
    assert.equal(value('cargo_cacher_requests_total', { kind: 'crate', outcome: 'hit' }), 2);
    assert.equal(value('cargo_cacher_requests_total', { kind: 'crate', outcome: 'miss' }), 1);
    assert.equal(value('cargo_cacher_saved_bytes_total', { kind: 'crate' }), 2 * a);
    // One per upstream attempt: the download is retried before the client gets its 5xx.
    const errors = value('cargo_cacher_upstream_errors_total', {
      source: 'crate',
      reason: 'http-5xx',
    });
    assert.ok((errors ?? 0) >= 1, `upstream errors ${errors}`);
    assert.equal(value('cargo_cacher_cache_objects', { area: 'crates' }), 1);
    assert.equal(value('cargo_cacher_git_index_ready'), 1);
    const age = value('cargo_cacher_git_index_age_seconds') ?? -1;
    assert.ok(age >= 0 && age < 60, `git age ${age}`);
    assert.equal(value('cargo_cacher_inflight_fetches', { cache: 'crate' }), 0);
  });
});
