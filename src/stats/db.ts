/**
 * @module
 * The statistics database: SQLite (WAL) at `<storage>/stats.sqlite`, so the numbers survive
 * restarts. The schema is versioned through `PRAGMA user_version` and brought up to date by the
 * ordered {@link MIGRATIONS} when the database is opened (see `src/sqlite.ts`, shared with the
 * catalogue).
 */
import { join } from 'node:path';
import { type Database, type DatabaseOptions, openDatabase, type Schema } from '../sqlite.ts';

export {
  nodeSqliteDriver,
  type SqliteConnection,
  type SqliteDriver,
  type Statement,
} from '../sqlite.ts';

/** The statistics database (a {@link Database} with the {@link MIGRATIONS} schema). */
export type StatsDb = Database;

/** The file name below the storage root. */
export const STATS_FILE = 'stats.sqlite';

/**
 * Schema migrations, in order: entry `i` takes the schema from version `i` to `i + 1`. Never edit
 * a released entry; append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  -- Requests by kind and outcome, per UTC minute (pruned after some hours) and per UTC day
  -- (kept). bytes_saved: bytes sent that did not have to come from upstream.
  CREATE TABLE request_minute (
    minute INTEGER NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
    requests INTEGER NOT NULL, bytes_sent INTEGER NOT NULL, bytes_upstream INTEGER NOT NULL,
    bytes_saved INTEGER NOT NULL, duration_ms REAL NOT NULL, ttfb_ms REAL NOT NULL,
    PRIMARY KEY (minute, kind, outcome)
  ) WITHOUT ROWID;
  CREATE TABLE request_day (
    day INTEGER NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
    requests INTEGER NOT NULL, bytes_sent INTEGER NOT NULL, bytes_upstream INTEGER NOT NULL,
    bytes_saved INTEGER NOT NULL, duration_ms REAL NOT NULL, ttfb_ms REAL NOT NULL,
    PRIMARY KEY (day, kind, outcome)
  ) WITHOUT ROWID;

  -- .crate files served (200 answers), per version.
  CREATE TABLE crate_version (
    name TEXT NOT NULL, version TEXT NOT NULL,
    downloads INTEGER NOT NULL, hits INTEGER NOT NULL, bytes_sent INTEGER NOT NULL,
    first_served INTEGER NOT NULL, last_served INTEGER NOT NULL,
    PRIMARY KEY (name, version)
  ) WITHOUT ROWID;

  -- Upstream requests (index files, crates) per minute and per day, and failures by reason.
  CREATE TABLE upstream_minute (
    minute INTEGER NOT NULL, source TEXT NOT NULL,
    requests INTEGER NOT NULL, failures INTEGER NOT NULL,
    latency_ms REAL NOT NULL, latency_max_ms REAL NOT NULL,
    PRIMARY KEY (minute, source)
  ) WITHOUT ROWID;
  CREATE TABLE upstream_day (
    day INTEGER NOT NULL, source TEXT NOT NULL,
    requests INTEGER NOT NULL, failures INTEGER NOT NULL,
    latency_ms REAL NOT NULL, latency_max_ms REAL NOT NULL,
    PRIMARY KEY (day, source)
  ) WITHOUT ROWID;
  CREATE TABLE upstream_failure (
    day INTEGER NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL, failures INTEGER NOT NULL,
    PRIMARY KEY (day, source, reason)
  ) WITHOUT ROWID;
  CREATE TABLE upstream_source (
    source TEXT PRIMARY KEY, last_success_at INTEGER, last_failure_at INTEGER, last_error TEXT
  ) WITHOUT ROWID;

  -- Recent misses and errors, bounded (the recorder deletes the oldest rows).
  CREATE TABLE event (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
    kind TEXT NOT NULL, outcome TEXT NOT NULL, status INTEGER NOT NULL,
    target TEXT NOT NULL, detail TEXT
  );
  CREATE INDEX event_by_type ON event (type, id);
  `,
  `
  -- Toolchain archives served (200 answers), per release ("1.99.0 (2026-11-26)").
  CREATE TABLE toolchain_release (
    release TEXT PRIMARY KEY,
    downloads INTEGER NOT NULL, hits INTEGER NOT NULL, bytes_sent INTEGER NOT NULL,
    first_served INTEGER NOT NULL, last_served INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];

/** The database path for a storage root. */
export function statsPath(storageDir: string): string {
  return join(storageDir, STATS_FILE);
}

/** The statistics database's schema. */
export const STATS_SCHEMA: Schema = {
  label: 'the statistics database',
  migrations: MIGRATIONS,
  onCreate(db) {
    db.sqlite
      .prepare('INSERT INTO meta (key, value) VALUES (?, ?)')
      .run('created_at', String(Date.now()));
  },
};

/**
 * Opens (creating and migrating unless read-only) the statistics database. `:memory:` works for
 * unit tests.
 *
 * @example const db = openStatsDb('/var/cache/crates/stats.sqlite');
 */
export function openStatsDb(path: string, options: DatabaseOptions = {}): StatsDb {
  return openDatabase(path, STATS_SCHEMA, options);
}
