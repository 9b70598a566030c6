/**
 * @module
 * Reading the statistics database: totals, top crates, recent events, time series and upstream
 * health. Each function is one or two indexed queries over small aggregate tables.
 */

import type { StatsDb } from './db.ts';
import { addSums, emptySums, type RequestSums } from './rows.ts';
import { DAY_MS, dayOf, MINUTE_MS, minuteOf } from './time.ts';

/** Outcomes that were answered from the cache. */
const CACHE_ANSWERS = ['hit', 'revalidated', 'stale'] as const;
/** Kinds whose answers can be hits or misses (the git index is always served from the mirror). */
const CACHED_KINDS = ['sparse-index', 'crate', 'toolchain'] as const;

/** Request sums by outcome, for one kind or all of them. */
export type OutcomeSums = Record<string, RequestSums>;

/** Totals since the database was created. */
export interface Totals {
  /** kind → outcome → sums. */
  byKind: Record<string, OutcomeSums>;
  /** outcome → sums over every kind. */
  byOutcome: OutcomeSums;
  all: RequestSums;
}

/** Sums every per-day row, by kind and outcome. */
export function readTotals(db: StatsDb): Totals {
  const rows = db.sqlite
    .prepare(`
      SELECT kind, outcome, sum(requests) AS requests, sum(bytes_sent) AS bytesSent,
        sum(bytes_upstream) AS bytesUpstream, sum(bytes_saved) AS bytesSaved,
        sum(duration_ms) AS durationMs, sum(ttfb_ms) AS ttfbMs
      FROM request_day GROUP BY kind, outcome`)
    .all() as ({ kind: string; outcome: string } & RequestSums)[];
  const totals: Totals = { byKind: {}, byOutcome: {}, all: emptySums() };
  for (const { kind, outcome, ...sums } of rows) {
    totals.byKind[kind] ??= {};
    (totals.byKind[kind] as OutcomeSums)[outcome] = sums;
    totals.byOutcome[outcome] ??= emptySums();
    addSums(totals.byOutcome[outcome] as RequestSums, sums);
    addSums(totals.all, sums);
  }
  return totals;
}

/** Requests with `outcome` in `sums` (0 when there were none). */
export function countOf(sums: OutcomeSums | undefined, outcome: string): number {
  return sums?.[outcome]?.requests ?? 0;
}

/**
 * The share of cacheable requests (index files and crates) answered from the cache: hits,
 * revalidations and stale answers over those plus misses. `null` before the first one.
 */
export function hitRatio(totals: Totals): number | null {
  let answered = 0;
  let missed = 0;
  for (const kind of CACHED_KINDS) {
    const sums = totals.byKind[kind];
    for (const outcome of CACHE_ANSWERS) answered += countOf(sums, outcome);
    missed += countOf(sums, 'miss');
  }
  return answered + missed === 0 ? null : answered / (answered + missed);
}

/** One crate in the top list. */
export interface TopCrate {
  name: string;
  downloads: number;
  hits: number;
  versions: number;
  bytesSent: number;
  lastServed: number;
}

/** The most downloaded crates (all versions together). */
export function readTopCrates(db: StatsDb, limit = 10): TopCrate[] {
  return db.sqlite
    .prepare(`
      SELECT name, sum(downloads) AS downloads, sum(hits) AS hits, count(*) AS versions,
        sum(bytes_sent) AS bytesSent, max(last_served) AS lastServed
      FROM crate_version GROUP BY name ORDER BY downloads DESC, name LIMIT ?`)
    .all(limit) as TopCrate[];
}

/** One toolchain release in the top list. */
export interface TopToolchain {
  /** `1.99.0 (2026-11-26)`. */
  release: string;
  /** Archives served. */
  downloads: number;
  hits: number;
  bytesSent: number;
  lastServed: number;
}

/** The toolchain releases whose archives were served most. */
export function readTopToolchains(db: StatsDb, limit = 10): TopToolchain[] {
  return db.sqlite
    .prepare(`
      SELECT release, downloads, hits, bytes_sent AS bytesSent, last_served AS lastServed
      FROM toolchain_release ORDER BY downloads DESC, release LIMIT ?`)
    .all(limit) as TopToolchain[];
}

/** Crate versions served, and downloads over all of them. */
export function readCrateCounts(db: StatsDb): { versions: number; downloads: number } {
  const row = db.sqlite
    .prepare(
      'SELECT count(*) AS versions, coalesce(sum(downloads), 0) AS downloads FROM crate_version',
    )
    .get() as { versions: number; downloads: number };
  return row;
}

/** A recent miss, error or upstream failure. */
export interface RecentEvent {
  at: number;
  kind: string;
  outcome: string;
  status: number;
  target: string;
  detail: string | null;
}

/** The newest events of a type (`miss`, `error`, `upstream`), newest first. */
export function readRecentEvents(db: StatsDb, type: string, limit = 20): RecentEvent[] {
  return db.sqlite
    .prepare(`
      SELECT at, kind, outcome, status, target, detail FROM event
      WHERE type = ? ORDER BY id DESC LIMIT ?`)
    .all(type, limit) as RecentEvent[];
}

/** One point of a time series. */
export interface SeriesPoint {
  /** Start of the bucket, ms since the epoch. */
  t: number;
  requests: number;
  hits: number;
  misses: number;
  errors: number;
  bytesSent: number;
  bytesSaved: number;
}

/** Per-minute points for the last `count` minutes, zero-filled, oldest first. */
export function readMinuteSeries(db: StatsDb, now: number, count: number): SeriesPoint[] {
  return readSeries(db, 'request_minute', 'minute', minuteOf(now) - count + 1, count, MINUTE_MS);
}

/** Per-day points for the last `count` UTC days, zero-filled, oldest first. */
export function readDaySeries(db: StatsDb, now: number, count: number): SeriesPoint[] {
  return readSeries(db, 'request_day', 'day', dayOf(now) - count + 1, count, DAY_MS);
}

function readSeries(
  db: StatsDb,
  table: string,
  column: string,
  first: number,
  count: number,
  stepMs: number,
): SeriesPoint[] {
  const rows = db.sqlite
    .prepare(`
      SELECT ${column} AS bucket, sum(requests) AS requests,
        sum(CASE WHEN outcome IN ('hit', 'revalidated', 'stale') THEN requests ELSE 0 END) AS hits,
        sum(CASE WHEN outcome = 'miss' THEN requests ELSE 0 END) AS misses,
        sum(CASE WHEN outcome = 'error' THEN requests ELSE 0 END) AS errors,
        sum(bytes_sent) AS bytesSent, sum(bytes_saved) AS bytesSaved
      FROM ${table} WHERE ${column} >= ? AND ${column} < ? GROUP BY ${column}`)
    .all(first, first + count) as ({ bucket: number } & Omit<SeriesPoint, 't'>)[];
  const byBucket = new Map(rows.map(({ bucket, ...point }) => [bucket, point]));
  return Array.from({ length: count }, (_, i) => {
    const bucket = first + i;
    const point = byBucket.get(bucket);
    return {
      t: bucket * stepMs,
      requests: point?.requests ?? 0,
      hits: point?.hits ?? 0,
      misses: point?.misses ?? 0,
      errors: point?.errors ?? 0,
      bytesSent: point?.bytesSent ?? 0,
      bytesSaved: point?.bytesSaved ?? 0,
    };
  });
}

/** How an upstream has been doing. */
export type Health = 'ok' | 'degraded' | 'down' | 'idle';

/** One upstream source (index or crate downloads). */
export interface UpstreamSourceStats {
  source: string;
  health: Health;
  /** Over the last 24 hours. */
  requests: number;
  failures: number;
  avgLatencyMs: number | null;
  maxLatencyMs: number | null;
  failuresByReason: Record<string, number>;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastError: string | null;
}

/** Window that decides the current health. */
const HEALTH_WINDOW_MINUTES = 5;

/** Upstream sources with their last-24-hours figures and current health. */
export function readUpstream(db: StatsDb, now: number): UpstreamSourceStats[] {
  const sql = db.sqlite;
  const since = minuteOf(now) - 24 * 60 + 1;
  const sources = sql
    .prepare(`
      SELECT source, last_success_at AS lastSuccessAt, last_failure_at AS lastFailureAt,
        last_error AS lastError FROM upstream_source ORDER BY source`)
    .all() as Pick<
    UpstreamSourceStats,
    'source' | 'lastSuccessAt' | 'lastFailureAt' | 'lastError'
  >[];
  const windowStmt = sql.prepare(`
    SELECT coalesce(sum(requests), 0) AS requests, coalesce(sum(failures), 0) AS failures,
      sum(latency_ms) AS latencyMs, max(latency_max_ms) AS maxLatencyMs
    FROM upstream_minute WHERE source = ? AND minute >= ?`);
  const reasonsStmt = sql.prepare(`
    SELECT reason, sum(failures) AS failures FROM upstream_failure
    WHERE source = ? AND day >= ? GROUP BY reason`);
  return sources.map((state) => {
    const day = windowStmt.get(state.source, since) as WindowRow;
    const recent = windowStmt.get(
      state.source,
      minuteOf(now) - HEALTH_WINDOW_MINUTES + 1,
    ) as WindowRow;
    const reasons = reasonsStmt.all(state.source, dayOf(now) - 1) as {
      reason: string;
      failures: number;
    }[];
    return {
      ...state,
      health: healthOf(recent.requests, recent.failures),
      requests: day.requests,
      failures: day.failures,
      avgLatencyMs:
        day.requests > 0 && day.latencyMs !== null ? day.latencyMs / day.requests : null,
      maxLatencyMs: day.maxLatencyMs,
      failuresByReason: Object.fromEntries(reasons.map((r) => [r.reason, r.failures])),
    };
  });
}

interface WindowRow {
  requests: number;
  failures: number;
  latencyMs: number | null;
  maxLatencyMs: number | null;
}

/** Health from the recent window: idle without requests, down when most failed. */
export function healthOf(requests: number, failures: number): Health {
  if (requests === 0) return failures > 0 ? 'degraded' : 'idle';
  if (failures === 0) return 'ok';
  return failures * 2 >= requests ? 'down' : 'degraded';
}

/** The worst health of several sources (idle ones do not count unless all are idle). */
export function overallHealth(healths: Health[]): Health {
  const order: Health[] = ['down', 'degraded', 'ok'];
  return order.find((health) => healths.includes(health)) ?? 'idle';
}

/** When statistics start: the database's creation, or the oldest day recorded if earlier. */
export function readSince(db: StatsDb): number | null {
  const row = db.sqlite
    .prepare(`
      SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'created_at') AS createdAt,
        (SELECT min(day) FROM request_day) AS firstDay`)
    .get() as { createdAt: number | null; firstDay: number | null };
  // A day row of the creation day itself says nothing earlier than the creation time.
  if (row.firstDay === null || (row.createdAt !== null && row.firstDay >= dayOf(row.createdAt))) {
    return row.createdAt;
  }
  return row.firstDay * DAY_MS;
}
