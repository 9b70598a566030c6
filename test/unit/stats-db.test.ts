import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { FinishedRequest } from '../../src/observe/records.ts';
import { MIGRATIONS, openStatsDb } from '../../src/stats/db.ts';
import {
  healthOf,
  hitRatio,
  overallHealth,
  readDaySeries,
  readMinuteSeries,
  readRecentEvents,
  readSince,
  readTopCrates,
  readTotals,
  readUpstream,
} from '../../src/stats/queries.ts';
import { StatsRecorder } from '../../src/stats/recorder.ts';
import { buildSummary, registryUrls, seedStats } from '../../src/stats/summary.ts';
import { DAY_MS, MINUTE_MS } from '../../src/stats/time.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await removeTempDir(dir);
});

async function tempDbPath(): Promise<string> {
  const dir = await makeTempDir('stats-db');
  dirs.push(dir);
  return join(dir, 'stats.sqlite');
}

function hit(name = 'serde', overrides: Partial<FinishedRequest> = {}): FinishedRequest {
  return {
    kind: 'crate',
    outcome: 'hit',
    upstreamBytes: 0,
    method: 'GET',
    url: `/api/v1/crates/${name}/1.0.0/download`,
    status: 200,
    bytesSent: 100,
    durationMs: 1,
    crate: { name, version: '1.0.0' },
    ...overrides,
  };
}

/** A recorder on a fresh database with a hand-driven clock and no timer flushes. */
async function setup(start = Date.UTC(2026, 5, 1, 10, 0, 0)) {
  const db = openStatsDb(await tempDbPath());
  const clock = { now: start };
  const recorder = new StatsRecorder({ db, flushIntervalMs: 3_600_000, now: () => clock.now });
  return { db, clock, recorder };
}

describe('stats database', () => {
  test('creates the schema at the latest version and keeps data across reopening', async () => {
    const path = await tempDbPath();
    const db = openStatsDb(path);
    assert.equal(db.schemaVersion, MIGRATIONS.length);
    const recorder = new StatsRecorder({ db });
    recorder.observe(hit());
    recorder.close();
    db.close();
    const again = openStatsDb(path);
    assert.equal(again.schemaVersion, MIGRATIONS.length);
    assert.equal(readTotals(again).all.requests, 1);
    again.close();
  });

  test('refuses a database written by a newer version', async () => {
    const path = await tempDbPath();
    const db = openStatsDb(path);
    db.sqlite.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    assert.throws(() => openStatsDb(path), { code: 'CARGO_CACHER_STORAGE', message: /newer/ });
  });

  test('writes 10,000 hits in one transaction', async () => {
    const { db, recorder } = await setup();
    const before = db.transactions;
    for (let i = 0; i < 10_000; i += 1) recorder.observe(hit());
    assert.equal(db.transactions, before, 'nothing is written on the request path');
    recorder.flush();
    assert.equal(db.transactions - before, 1);
    assert.equal(readTotals(db).byKind.crate?.hit?.requests, 10_000);
    assert.equal(readTopCrates(db)[0]?.downloads, 10_000);
    recorder.close();
    db.close();
  });

  test('flushes on its own once per interval', async (t) => {
    const path = await tempDbPath();
    // The recorder's own interval timer, moved by the test instead of waited for.
    t.mock.timers.enable({ apis: ['setInterval'] });
    const db = openStatsDb(path);
    const recorder = new StatsRecorder({ db, flushIntervalMs: 50 });
    const before = db.transactions;
    for (let i = 0; i < 1000; i += 1) recorder.observe(hit());
    t.mock.timers.tick(49);
    assert.ok(recorder.pending > 0, 'nothing is written before the interval');
    assert.equal(db.transactions, before);
    t.mock.timers.tick(1);
    assert.equal(recorder.pending, 0);
    assert.equal(db.transactions - before, 1, 'one transaction per interval');
    t.mock.timers.tick(150);
    assert.equal(db.transactions - before, 1, 'an idle interval writes nothing');
    assert.equal(readTotals(db).all.requests, 1000);
    recorder.close();
    db.close();
  });

  test('prunes minute rows past the retention but keeps the day totals', async () => {
    const { db, clock, recorder } = await setup();
    recorder.observe(hit());
    recorder.flush();
    clock.now += 49 * 60 * MINUTE_MS;
    recorder.observe(hit());
    recorder.flush();
    const minutes = db.sqlite.prepare('SELECT count(*) AS n FROM request_minute').get() as {
      n: number;
    };
    assert.equal(minutes.n, 1);
    assert.equal(readTotals(db).all.requests, 2);
    recorder.close();
    db.close();
  });

  test('keeps the newest events of each type', async () => {
    const db = openStatsDb(await tempDbPath());
    const recorder = new StatsRecorder({ db, maxEvents: 5, flushIntervalMs: 3_600_000 });
    recorder.observe(hit('err', { outcome: 'error', status: 502 }));
    for (let i = 0; i < 20; i += 1) recorder.observe(hit(`miss-${i}`, { outcome: 'miss' }));
    recorder.flush();
    const misses = readRecentEvents(db, 'miss', 100);
    assert.deepEqual(
      misses.map((e) => e.target),
      [19, 18, 17, 16, 15].map((i) => `miss-${i}@1.0.0`),
    );
    assert.equal(readRecentEvents(db, 'error').length, 1, 'misses never push errors out');
    recorder.close();
    db.close();
  });
});

describe('stats queries', () => {
  test('hit ratio counts index files and crates, not the git index', async () => {
    const { db, recorder } = await setup();
    for (let i = 0; i < 3; i += 1) recorder.observe(hit());
    recorder.observe(hit('serde', { outcome: 'miss', upstreamBytes: 100 }));
    recorder.observe(hit('x', { kind: 'sparse-index', outcome: 'revalidated', crate: undefined }));
    for (let i = 0; i < 50; i += 1) recorder.observe(hit('g', { kind: 'git', crate: undefined }));
    recorder.flush();
    assert.equal(hitRatio(readTotals(db)), 4 / 5);
    recorder.close();
    db.close();
  });

  test('time series are zero-filled, oldest first, one point per minute or day', async () => {
    const { db, clock, recorder } = await setup();
    recorder.observe(hit());
    clock.now += 2 * MINUTE_MS;
    recorder.observe(hit('serde', { outcome: 'miss' }));
    recorder.flush();
    const minutes = readMinuteSeries(db, clock.now, 5);
    assert.deepEqual(
      minutes.map((p) => [p.requests, p.hits, p.misses]),
      [
        [0, 0, 0],
        [0, 0, 0],
        [1, 1, 0],
        [0, 0, 0],
        [1, 0, 1],
      ],
    );
    assert.equal((minutes[1]?.t ?? 0) - (minutes[0]?.t ?? 0), MINUTE_MS);
    const days = readDaySeries(db, clock.now, 3);
    assert.deepEqual(
      days.map((p) => p.requests),
      [0, 0, 2],
    );
    recorder.close();
    db.close();
  });

  test('upstream health comes from the last five minutes', async () => {
    const { db, clock, recorder } = await setup();
    const url = 'http://upstream/x';
    recorder.observeUpstream({ source: 'index', url, status: 200, latencyMs: 10 });
    recorder.observeUpstream({
      source: 'crate',
      url,
      latencyMs: 5,
      failure: 'timeout',
      detail: 't/o',
    });
    recorder.flush();
    let sources = readUpstream(db, clock.now);
    assert.deepEqual(
      sources.map((s) => [s.source, s.health, s.requests, s.failures]),
      [
        ['crate', 'down', 1, 1],
        ['index', 'ok', 1, 0],
      ],
    );
    assert.deepEqual(sources[0]?.failuresByReason, { timeout: 1 });
    assert.equal(sources[0]?.lastError, 't/o');
    clock.now += 10 * MINUTE_MS;
    sources = readUpstream(db, clock.now);
    assert.deepEqual(
      sources.map((s) => s.health),
      ['idle', 'idle'],
    );
    recorder.close();
    db.close();
  });

  test('statistics start at creation, or at the oldest day recorded before it', async () => {
    const { db, clock, recorder } = await setup(Date.now());
    const created = readSince(db) ?? 0;
    assert.ok(Math.abs(created - Date.now()) < 60_000);
    recorder.observe(hit());
    recorder.flush();
    assert.equal(readSince(db), created, 'a row of the creation day changes nothing');
    clock.now = created - 3 * DAY_MS;
    recorder.observe(hit());
    recorder.flush();
    assert.equal(readSince(db), Math.floor(clock.now / DAY_MS) * DAY_MS);
    recorder.close();
    db.close();
  });

  test('health rules', () => {
    assert.equal(healthOf(0, 0), 'idle');
    assert.equal(healthOf(10, 0), 'ok');
    assert.equal(healthOf(10, 1), 'degraded');
    assert.equal(healthOf(10, 5), 'down');
    assert.equal(overallHealth(['ok', 'idle', 'degraded']), 'degraded');
    assert.equal(overallHealth(['idle', 'idle']), 'idle');
    assert.equal(overallHealth([]), 'idle');
  });

  test('the summary and the seed shape agree with what was recorded', async () => {
    const { db, clock, recorder } = await setup();
    for (let i = 0; i < 4; i += 1) recorder.observe(hit());
    recorder.observe(hit('tokio', { outcome: 'miss', upstreamBytes: 100 }));
    recorder.flush();
    const summary = await buildSummary({ db, now: () => clock.now }, { minutes: 10, days: 2 });
    assert.equal(summary.totals.requests, 5);
    assert.equal(summary.totals.hitRatio, 0.8);
    assert.equal(summary.totals.bytesSaved, 400);
    assert.equal(summary.series.minutes.length, 10);
    assert.deepEqual(
      summary.topCrates.map((c) => [c.name, c.downloads]),
      [
        ['serde', 4],
        ['tokio', 1],
      ],
    );
    assert.deepEqual(seedStats(summary), {
      downloads: 5,
      hits: 4,
      misses: 1,
      bandwidth_saved: 400,
    });
    recorder.close();
    db.close();
  });

  test('registry URLs for cargo, with and without the git index', () => {
    assert.deepEqual(registryUrls({ publicUrl: 'https://crates.example.com/', gitEnabled: true }), {
      publicUrl: 'https://crates.example.com',
      sparse: 'sparse+https://crates.example.com/index/',
      git: 'https://crates.example.com/index',
    });
    assert.equal(registryUrls({ publicUrl: 'http://h:8080' }).git, null);
  });
});
