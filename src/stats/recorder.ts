/**
 * @module
 * The statistics recorder: a {@link RequestObserver} (and upstream observer) that adds records
 * up in memory and writes them to SQLite in one transaction about once a second, and once more
 * on close. Requests never wait for the disk.
 */
import type { AppLogger } from '../logger.ts';
import type { FinishedRequest } from '../observe/records.ts';
import type { UpstreamResult } from '../upstream/observed-client.ts';
import { StatsBatch } from './batch.ts';
import type { StatsDb } from './db.ts';
import type {
  CrateRow,
  EventRow,
  RequestRow,
  SourceState,
  ToolchainRow,
  UpstreamRow,
} from './rows.ts';
import { MINUTE_MS, minuteOf } from './time.ts';

/** Upstream failures of one source and reason on one day, as the batch adds them up. */
type FailureRow = StatsBatch['failures'] extends Map<string, infer Row> ? Row : never;

/** Options of {@link StatsRecorder}. */
export interface StatsRecorderOptions {
  db: StatsDb;
  log?: AppLogger;
  /** How often pending records are written; default 1 s. */
  flushIntervalMs?: number;
  /** Per-minute rows older than this are deleted (the per-day rows stay); default 48 h. */
  keepMinutesMs?: number;
  /** Recent misses and errors kept; default 1000. */
  maxEvents?: number;
  now?: () => number;
}

/** Pending records that trigger an early flush, so a long burst cannot grow memory unbounded. */
const EARLY_FLUSH_RECORDS = 100_000;
const PRUNE_EVERY_MS = 10 * MINUTE_MS;

/** Batches statistics into SQLite. Call {@link StatsRecorder.close} on shutdown. */
export class StatsRecorder {
  readonly #db: StatsDb;
  readonly #options: StatsRecorderOptions;
  readonly #now: () => number;
  readonly #statements: ReturnType<typeof prepare>;
  readonly #timer: NodeJS.Timeout;
  #batch: StatsBatch;
  #lastPrune = 0;
  #closed = false;
  #earlyFlush: NodeJS.Immediate | undefined;

  constructor(options: StatsRecorderOptions) {
    this.#db = options.db;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#batch = new StatsBatch(options.maxEvents);
    this.#statements = prepare(options.db);
    this.#timer = setInterval(() => this.flush(), options.flushIntervalMs ?? 1000);
    // The timer must not keep a finished test (or a closing server) alive.
    this.#timer.unref();
  }

  /** The request observer to pass to `buildApp`. */
  readonly observe = (record: FinishedRequest): void => {
    if (this.#closed) return;
    this.#batch.addRequest(record, this.#now());
    this.#scheduleEarlyFlush();
  };

  /** The upstream observer to pass to `createServices`. */
  readonly observeUpstream = (result: UpstreamResult): void => {
    if (this.#closed) return;
    this.#batch.addUpstream(result, this.#now());
    this.#scheduleEarlyFlush();
  };

  /** Records not yet written. */
  get pending(): number {
    return this.#batch.size;
  }

  /** Writes everything pending in one transaction (no-op when nothing is pending). */
  flush(): void {
    const batch = this.#batch;
    const prune = this.#now() - this.#lastPrune >= PRUNE_EVERY_MS;
    if (batch.size === 0 && !prune) return;
    this.#batch = new StatsBatch(this.#options.maxEvents);
    try {
      this.#db.write(() => {
        this.#write(batch);
        if (prune) this.#prune();
      });
      if (prune) this.#lastPrune = this.#now();
    } catch (err) {
      // Losing a second of statistics beats failing requests or growing memory without end.
      this.#options.log?.warn({ err, dropped: batch.size }, 'could not write statistics');
    }
  }

  /** Flushes and stops the timer. The database stays open (its owner closes it). */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#timer);
    if (this.#earlyFlush) clearImmediate(this.#earlyFlush);
    this.flush();
    this.#closed = true;
  }

  #scheduleEarlyFlush(): void {
    if (this.#batch.size < EARLY_FLUSH_RECORDS || this.#earlyFlush) return;
    this.#earlyFlush = setImmediate(() => {
      this.#earlyFlush = undefined;
      this.flush();
    });
  }

  #write(batch: StatsBatch): void {
    const s = this.#statements;
    for (const row of batch.requests.values()) s.requestMinute(row);
    for (const row of batch.requestDays()) s.requestDay(row);
    for (const row of batch.crates.values()) s.crate(row);
    for (const row of batch.toolchains.values()) s.toolchain(row);
    for (const row of batch.upstream.values()) s.upstreamMinute(row);
    for (const row of batch.upstreamDays()) s.upstreamDay(row);
    for (const row of batch.failures.values()) s.failure(row);
    for (const [source, state] of batch.sources) s.source(source, state);
    const events = batch.events;
    for (const event of events) s.event(event);
    const keep = this.#options.maxEvents ?? 1000;
    for (const type of new Set(events.map((event) => event.type))) s.trimEvents(type, keep);
  }

  #prune(): void {
    const oldest = minuteOf(this.#now() - (this.#options.keepMinutesMs ?? 48 * 60 * MINUTE_MS));
    this.#statements.pruneRequests.run(oldest);
    this.#statements.pruneUpstream.run(oldest);
  }
}

/**
 * The statements of a flush, each behind a function taking a batch row. Parameters are
 * positional (`?`): node:sqlite binds them about twice as fast as named ones from an object,
 * which made the flush of a busy second 1.4× slower than better-sqlite3's (bench/sqlite.ts).
 */
function prepare(db: StatsDb) {
  const sql = db.sqlite;
  const requestUpsert = (table: string, column: string) => {
    const statement = sql.prepare(`
      INSERT INTO ${table} (${column}, kind, outcome, requests, bytes_sent, bytes_upstream,
        bytes_saved, duration_ms, ttfb_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
        bytes_sent = bytes_sent + excluded.bytes_sent,
        bytes_upstream = bytes_upstream + excluded.bytes_upstream,
        bytes_saved = bytes_saved + excluded.bytes_saved,
        duration_ms = duration_ms + excluded.duration_ms, ttfb_ms = ttfb_ms + excluded.ttfb_ms`);
    return (row: RequestRow) =>
      statement.run(
        row.bucket,
        row.kind,
        row.outcome,
        row.requests,
        row.bytesSent,
        row.bytesUpstream,
        row.bytesSaved,
        row.durationMs,
        row.ttfbMs,
      );
  };
  const upstreamUpsert = (table: string, column: string) => {
    const statement = sql.prepare(`
      INSERT INTO ${table} (${column}, source, requests, failures, latency_ms, latency_max_ms)
      VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
        failures = failures + excluded.failures, latency_ms = latency_ms + excluded.latency_ms,
        latency_max_ms = max(latency_max_ms, excluded.latency_max_ms)`);
    return (row: UpstreamRow) =>
      statement.run(
        row.bucket,
        row.source,
        row.requests,
        row.failures,
        row.latencyMs,
        row.latencyMaxMs,
      );
  };
  const crate = sql.prepare(`
    INSERT INTO crate_version (name, version, downloads, hits, bytes_sent, first_served,
      last_served)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT DO UPDATE SET downloads = downloads + excluded.downloads,
      hits = hits + excluded.hits, bytes_sent = bytes_sent + excluded.bytes_sent,
      last_served = max(last_served, excluded.last_served)`);
  const toolchain = sql.prepare(`
    INSERT INTO toolchain_release (release, downloads, hits, bytes_sent, first_served, last_served)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT DO UPDATE SET downloads = downloads + excluded.downloads,
      hits = hits + excluded.hits, bytes_sent = bytes_sent + excluded.bytes_sent,
      last_served = max(last_served, excluded.last_served)`);
  const failure = sql.prepare(`
    INSERT INTO upstream_failure (day, source, reason, failures) VALUES (?, ?, ?, ?)
    ON CONFLICT DO UPDATE SET failures = failures + excluded.failures`);
  const source = sql.prepare(`
    INSERT INTO upstream_source (source, last_success_at, last_failure_at, last_error)
    VALUES (?, ?, ?, ?)
    ON CONFLICT DO UPDATE SET
      last_success_at = coalesce(excluded.last_success_at, last_success_at),
      last_failure_at = coalesce(excluded.last_failure_at, last_failure_at),
      last_error = coalesce(excluded.last_error, last_error)`);
  const event = sql.prepare(`
    INSERT INTO event (at, type, kind, outcome, status, target, detail)
    VALUES (?, ?, ?, ?, ?, ?, ?)`);
  // Keeps the newest `keep` events of a type: misses never push the last errors out.
  const trimEvents = sql.prepare(`
    DELETE FROM event WHERE type = ? AND id < (
      SELECT id FROM event WHERE type = ? ORDER BY id DESC LIMIT 1 OFFSET ? - 1)`);
  return {
    requestMinute: requestUpsert('request_minute', 'minute'),
    requestDay: requestUpsert('request_day', 'day'),
    upstreamMinute: upstreamUpsert('upstream_minute', 'minute'),
    upstreamDay: upstreamUpsert('upstream_day', 'day'),
    crate: (row: CrateRow) =>
      crate.run(
        row.name,
        row.version,
        row.downloads,
        row.hits,
        row.bytesSent,
        row.firstServed,
        row.lastServed,
      ),
    toolchain: (row: ToolchainRow) =>
      toolchain.run(
        row.release,
        row.downloads,
        row.hits,
        row.bytesSent,
        row.firstServed,
        row.lastServed,
      ),
    failure: (row: FailureRow) => failure.run(row.day, row.source, row.reason, row.failures),
    source: (name: string, state: SourceState) =>
      source.run(
        name,
        state.lastSuccessAt ?? null,
        state.lastFailureAt ?? null,
        state.lastError ?? null,
      ),
    event: (row: EventRow) =>
      event.run(row.at, row.type, row.kind, row.outcome, row.status, row.target, row.detail),
    trimEvents: (type: string, keep: number) => trimEvents.run(type, type, keep),
    pruneRequests: sql.prepare('DELETE FROM request_minute WHERE minute < ?'),
    pruneUpstream: sql.prepare('DELETE FROM upstream_minute WHERE minute < ?'),
  };
}
