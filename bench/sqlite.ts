/**
 * @module
 * node:sqlite against better-sqlite3 on cargo-cacher's statistics workload, through the real
 * statistics code (`src/stats/`), so only the driver differs:
 *
 * - writes: one recorder flush (one transaction of upserts) of a busy second and of a peak second,
 *   and one upsert statement bound from named and from positional parameters;
 * - the dashboard: `buildSummary` (every query behind `/api/v1/stats`) on the synthetic history of
 *   the dashboard test, and on a large one (a year of days, 20,000 crate versions, full event
 *   tables), plus expiration's read of every crate version's last-served time;
 * - startup: a fresh process that loads the driver and creates and migrates the database, and
 *   opening an existing one.
 *
 * better-sqlite3 is no dependency of cargo-cacher: install it for the comparison with
 * `npm install --no-save better-sqlite3` (it compiles from source), then
 * `npx tsx bench/sqlite.ts`. Without it only node:sqlite is measured. `SQLITE_BENCH_ROUNDS`
 * scales the number of rounds (default 1).
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FinishedRequest } from '../src/observe/records.ts';
import { nodeSqliteDriver, openStatsDb, type SqliteDriver, type StatsDb } from '../src/stats/db.ts';
import { StatsRecorder } from '../src/stats/recorder.ts';
import { buildSummary } from '../src/stats/summary.ts';
import { DAY_MS, MINUTE_MS } from '../src/stats/time.ts';
import type { UpstreamResult } from '../src/upstream/observed-client.ts';
import { prng } from '../test/helpers/prng.ts';
import { seedStatsHistory } from '../test/helpers/stats-history.ts';

const ROUNDS = Number(process.env.SQLITE_BENCH_ROUNDS ?? 1);
const SELF = fileURLToPath(import.meta.url);
/** Where the synthetic past ends: a fixed moment, so every run writes the same rows. */
const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);

interface Driver {
  name: string;
  open: SqliteDriver;
}

/** better-sqlite3 if it is installed, loaded by a name the type checker does not resolve. */
async function loadBetterSqlite(): Promise<SqliteDriver | undefined> {
  const name = 'better-sqlite3';
  let Database: new (path: string, options: { readonly: boolean }) => ReturnType<SqliteDriver>;
  try {
    Database = ((await import(name)) as { default: typeof Database }).default;
  } catch {
    return undefined;
  }
  return (path, options) => new Database(path, { readonly: options.readonly });
}

async function drivers(): Promise<Driver[]> {
  const better = await loadBetterSqlite();
  return [
    { name: 'node:sqlite', open: nodeSqliteDriver },
    ...(better ? [{ name: 'better-sqlite3', open: better }] : []),
  ];
}

// ---------------------------------------------------------------------------------------------
// Traffic

const NAMES = Array.from({ length: 4000 }, (_, i) => `crate-${i.toString(36)}`);

function request(
  kind: 'sparse-index' | 'crate',
  outcome: 'hit' | 'miss' | 'error',
  name: string,
  version: string,
): FinishedRequest {
  const index = kind === 'sparse-index';
  const size = index ? 2_400 : 80_000;
  return {
    kind,
    outcome,
    upstreamBytes: outcome === 'miss' ? size : 0,
    method: 'GET',
    url: index
      ? `/index/${name.slice(0, 2)}/${name.slice(2, 4)}/${name}`
      : `/api/v1/crates/${name}/${version}/download`,
    status: outcome === 'error' ? 502 : 200,
    bytesSent: outcome === 'error' ? 0 : size,
    durationMs: outcome === 'miss' ? 180 : 0.4,
    ttfbMs: outcome === 'miss' ? 170 : 0.3,
    ...(!index && outcome !== 'error' && { crate: { name, version } }),
    ...(outcome === 'error' && { errorCode: 'CARGO_CACHER_UPSTREAM_UNREACHABLE' }),
  };
}

/** One second of traffic: how many requests, how many distinct crate versions, misses. */
interface Second {
  label: string;
  indexHits: number;
  crateHits: number;
  versions: number;
  misses: number;
  errors: number;
  upstream: number;
}

const SECONDS: Second[] = [
  // A team's CI: a few builds resolving and downloading at once.
  {
    label: 'busy second: 2,000 requests, 300 crate versions, 40 misses',
    indexHits: 1_200,
    crateHits: 760,
    versions: 300,
    misses: 40,
    errors: 0,
    upstream: 40,
  },
  // The hot-index benchmark's request rate, with crates and misses on top.
  {
    label: 'peak second: 45,000 requests, 2,000 crate versions, 500 misses and errors',
    indexHits: 40_000,
    crateHits: 4_500,
    versions: 2_000,
    misses: 400,
    errors: 100,
    upstream: 500,
  },
];

/** Feeds one second of `shape` into `recorder` (not timed: it is the same code for both). */
function feed(recorder: StatsRecorder, shape: Second, random: () => number): void {
  for (let i = 0; i < shape.indexHits; i += 1) {
    recorder.observe(request('sparse-index', 'hit', NAMES[i % 500] ?? 'serde', ''));
  }
  for (let i = 0; i < shape.crateHits; i += 1) {
    const v = Math.floor(random() * shape.versions);
    recorder.observe(request('crate', 'hit', NAMES[v % NAMES.length] ?? 'serde', `1.${v}.0`));
  }
  for (let i = 0; i < shape.misses + shape.errors; i += 1) {
    const v = Math.floor(random() * 100_000);
    const outcome = i < shape.misses ? 'miss' : 'error';
    recorder.observe(request('crate', outcome, NAMES[v % NAMES.length] ?? 'serde', `2.${v}.0`));
  }
  for (let i = 0; i < shape.upstream; i += 1) {
    const failed = i % 50 === 49;
    const result: UpstreamResult = {
      source: i % 2 === 0 ? 'index' : 'crate',
      url: 'https://static.crates.io/crates/x/x-1.0.0.crate',
      status: failed ? 503 : 200,
      latencyMs: 20 + random() * 200,
      ...(failed && { failure: 'http-5xx' as const, detail: 'HTTP 503' }),
    };
    recorder.observeUpstream(result);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Figure {
  /** Milliseconds per operation, one entry per run. */
  samples: number[];
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

function describe(figure: Figure): { median: number; p95: number } {
  const sorted = [...figure.samples].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p95: quantile(sorted, 0.95) };
}

setFlagsFromString('--expose-gc');
/**
 * A full collection before each timed operation: the garbage of the untimed setup (45,000
 * request records in a peak second) is otherwise collected inside whichever driver runs next.
 */
const collectGarbage = runInNewContext('gc') as () => void;

function time(fn: () => void): number {
  collectGarbage();
  const start = performance.now();
  fn();
  return performance.now() - start;
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  collectGarbage();
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Rows of the report: operation → driver → figure. */
type Results = Map<string, Map<string, Figure>>;

function record(results: Results, operation: string, driver: string, ms: number): void {
  const byDriver = results.get(operation) ?? new Map<string, Figure>();
  results.set(operation, byDriver);
  const figure = byDriver.get(driver) ?? { samples: [] };
  byDriver.set(driver, figure);
  figure.samples.push(ms);
}

/** Flushes of `shape`, alternating the drivers so neither gets a warmer machine. */
async function measureWrites(dir: string, list: Driver[], results: Results): Promise<void> {
  for (const shape of SECONDS) {
    const setups = list.map((driver) => {
      const db = openStatsDb(join(dir, `write-${driver.name}-${shape.indexHits}.sqlite`), {
        driver: driver.open,
      });
      const clock = { now: NOW };
      const recorder = new StatsRecorder({ db, flushIntervalMs: 3_600_000, now: () => clock.now });
      return { driver, db, clock, recorder, random: prng(7) };
    });
    const runs = 20 + 200 * ROUNDS;
    for (let run = 0; run < runs; run += 1) {
      for (const s of run % 2 === 0 ? setups : [...setups].reverse()) {
        s.clock.now += 1000;
        feed(s.recorder, shape, s.random);
        const ms = time(() => s.recorder.flush());
        if (run >= 20) record(results, `write: ${shape.label}`, s.driver.name, ms);
      }
    }
    for (const s of setups) {
      s.recorder.close();
      s.db.close();
    }
  }
}

/** One crate row per version, as a flush binds them. */
const UPSERT_ROWS = Array.from({ length: 2_000 }, (_, i) => ({
  name: NAMES[i % NAMES.length] ?? 'serde',
  version: `1.${i}.0`,
  downloads: 3,
  hits: 2,
  bytesSent: 240_000,
  firstServed: NOW,
  lastServed: NOW,
}));

const CRATE_UPSERT = `
  INSERT INTO crate_version (name, version, downloads, hits, bytes_sent, first_served,
    last_served)
  VALUES (@name, @version, @downloads, @hits, @bytesSent, @firstServed, @lastServed)
  ON CONFLICT DO UPDATE SET downloads = downloads + excluded.downloads,
    hits = hits + excluded.hits, bytes_sent = bytes_sent + excluded.bytes_sent,
    last_served = max(last_served, excluded.last_served)`;

/**
 * The recorder's crate upsert, 2,000 rows in one transaction, with its parameters bound from
 * one object per row (`@name`) and positionally (`?`): why the recorder binds positionally.
 */
function measureBinding(dir: string, list: Driver[], results: Results): void {
  const setups = list.map((driver) => {
    const db = openStatsDb(join(dir, `bind-${driver.name}.sqlite`), { driver: driver.open });
    const named = db.sqlite.prepare(CRATE_UPSERT);
    const positional = db.sqlite.prepare(CRATE_UPSERT.replace(/@\w+/g, '?'));
    return { driver, db, named, positional };
  });
  const runs = 20 + 200 * ROUNDS;
  for (let run = 0; run < runs; run += 1) {
    for (const { driver, db, named, positional } of run % 2 === 0
      ? setups
      : [...setups].reverse()) {
      const byObject = time(() =>
        db.write(() => {
          for (const row of UPSERT_ROWS) named.run(row);
        }),
      );
      const byPosition = time(() =>
        db.write(() => {
          for (const r of UPSERT_ROWS) {
            positional.run(
              r.name,
              r.version,
              r.downloads,
              r.hits,
              r.bytesSent,
              r.firstServed,
              r.lastServed,
            );
          }
        }),
      );
      if (run < 20) continue;
      record(
        results,
        '2,000 crate upserts, named parameters (`@name`, one object per row)',
        driver.name,
        byObject,
      );
      record(
        results,
        '2,000 crate upserts, positional parameters (`?`, as the recorder binds)',
        driver.name,
        byPosition,
      );
    }
  }
  for (const { db } of setups) db.close();
}

/**
 * A large history written through the recorder with a moved clock: a year of days, the last
 * 48 hours of minutes, 20,000 crate versions, 1,000 events of each type, two upstreams.
 */
function writeLargeHistory(path: string): void {
  const db = openStatsDb(path);
  const clock = { now: NOW - 365 * DAY_MS };
  const recorder = new StatsRecorder({ db, flushIntervalMs: 3_600_000, now: () => clock.now });
  const random = prng(11);
  let version = 0;
  for (let day = 365; day >= 1; day -= 1) {
    clock.now = NOW - day * DAY_MS;
    for (let i = 0; i < 55; i += 1) {
      version = (version + 1) % 20_000;
      const name = NAMES[version % NAMES.length] ?? 'serde';
      recorder.observe(request('crate', 'hit', name, `1.${version}.0`));
      recorder.observe(request('sparse-index', random() < 0.9 ? 'hit' : 'miss', name, ''));
    }
    recorder.flush();
  }
  for (let minute = 48 * 60; minute >= 1; minute -= 1) {
    clock.now = NOW - minute * MINUTE_MS;
    for (let i = 0; i < 8; i += 1) {
      const name = NAMES[Math.floor(random() * NAMES.length)] ?? 'serde';
      const roll = random();
      const outcome = roll < 0.02 ? 'error' : roll < 0.1 ? 'miss' : 'hit';
      recorder.observe(request(i % 2 === 0 ? 'crate' : 'sparse-index', outcome, name, '1.0.0'));
    }
    for (const source of ['index', 'crate'] as const) {
      recorder.observeUpstream({
        source,
        url: `https://${source}.example/x`,
        status: 200,
        latencyMs: 30,
      });
    }
    recorder.observeUpstream({
      source: 'crate',
      url: 'https://static.crates.io/crates/x',
      latencyMs: 10_000,
      failure: 'timeout',
      detail: 'headers timeout',
    });
    recorder.flush();
  }
  recorder.close();
  db.close();
}

/** The dashboard's summary, on `path`, through each driver. */
async function measureQueries(
  label: string,
  path: string,
  list: Driver[],
  results: Results,
): Promise<void> {
  const opened = list.map((driver) => ({
    driver,
    db: openStatsDb(path, { readonly: true, driver: driver.open }),
  }));
  const runs = 10 + 100 * ROUNDS;
  const summarize = (db: StatsDb) => buildSummary({ db, now: () => NOW }, {});
  for (let run = 0; run < runs; run += 1) {
    for (const { driver, db } of run % 2 === 0 ? opened : [...opened].reverse()) {
      const summary = await timeAsync(() => summarize(db));
      if (run < 10) continue;
      record(results, `dashboard summary (${label})`, driver.name, summary);
    }
  }
  for (const { db } of opened) db.close();
}

/** Opening an existing, migrated database in this process (the driver already loaded). */
function measureReopen(path: string, list: Driver[], results: Results): void {
  const runs = 20 + 200 * ROUNDS;
  for (let run = 0; run < runs; run += 1) {
    for (const driver of run % 2 === 0 ? list : [...list].reverse()) {
      const ms = time(() => openStatsDb(path, { driver: driver.open }).close());
      if (run >= 20) record(results, 'open an existing database (driver loaded)', driver.name, ms);
    }
  }
}

/**
 * A fresh process per sample: loading the driver, then creating and migrating a database (what
 * the first start of cargo-cacher does), measured inside the child from before the load.
 */
function measureColdStart(dir: string, list: Driver[], results: Results): void {
  const runs = 10 * ROUNDS;
  for (let run = 0; run < runs; run += 1) {
    for (const driver of list) {
      const path = join(dir, `cold-${driver.name}-${run}.sqlite`);
      const child = spawnSync(
        process.execPath,
        [...process.execArgv, SELF, '--cold-start', driver.name, path],
        { encoding: 'utf8' },
      );
      if (child.status !== 0) throw new Error(`cold start failed: ${child.stderr}`);
      const { ms } = JSON.parse(child.stdout) as { ms: number };
      record(results, 'new process: load the driver, create and migrate', driver.name, ms);
    }
  }
}

/** The child of {@link measureColdStart}. */
async function coldStart(name: string, path: string): Promise<void> {
  const start = performance.now();
  const driver =
    name === 'node:sqlite' ? nodeSqliteDriver : ((await loadBetterSqlite()) as SqliteDriver);
  openStatsDb(path, { driver }).close();
  process.stdout.write(JSON.stringify({ ms: performance.now() - start }));
}

// ---------------------------------------------------------------------------------------------
// Report

function report(results: Results, list: Driver[]): string {
  const names = list.map((d) => d.name);
  const ratio = names.length === 2 ? [`${names[0]} ÷ ${names[1]}`] : [];
  const lines = [
    `| operation | ${names.map((n) => `${n} median (p95), ms`).join(' | ')} | ${ratio.join('')} |`,
    `|---|${names.map(() => '---|').join('')}${ratio.length ? '---|' : ''}`,
  ];
  for (const [operation, byDriver] of results) {
    const figures = names.map((n) => describe(byDriver.get(n) ?? { samples: [] }));
    const cells = figures.map((f) => `${f.median.toFixed(3)} (${f.p95.toFixed(3)})`);
    const last =
      figures.length === 2
        ? [`${((figures[0]?.median ?? 0) / (figures[1]?.median ?? 1)).toFixed(2)}×`]
        : [];
    lines.push(`| ${operation} | ${cells.join(' | ')} | ${last.join('')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const list = await drivers();
  const dir = await mkdtemp(join(tmpdir(), 'cargo-cacher-sqlite-bench-'));
  const results: Results = new Map();
  try {
    await measureWrites(dir, list, results);
    measureBinding(dir, list, results);
    const dashboardHistory = join(dir, 'dashboard');
    await mkdir(dashboardHistory);
    seedStatsHistory(dashboardHistory, NOW);
    await measureQueries(
      "the dashboard test's history",
      join(dashboardHistory, 'stats.sqlite'),
      list,
      results,
    );
    const large = join(dir, 'large.sqlite');
    writeLargeHistory(large);
    await measureQueries('a year, 20,000 crate versions', large, list, results);
    const existing = join(dir, 'existing.sqlite');
    await copyFile(large, existing);
    measureReopen(existing, list, results);
    measureColdStart(dir, list, results);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(
    `node ${process.version}, ${cpus().length} × ${cpu}, ${list.map((d) => d.name).join(' and ')}\n\n` +
      `${report(results, list)}\n`,
  );
  if (list.length < 2) {
    process.stdout.write('\n(better-sqlite3 is not installed: only node:sqlite was measured)\n');
  }
}

if (process.argv[2] === '--cold-start') {
  await coldStart(process.argv[3] ?? '', process.argv[4] ?? '');
} else {
  await main();
}
