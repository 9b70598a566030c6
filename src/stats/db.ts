/**
 * @module
 * The statistics database: SQLite (better-sqlite3, WAL) at `<storage>/stats.sqlite`, so the
 * numbers survive restarts. The schema is versioned through `PRAGMA user_version` and brought
 * up to date by the ordered {@link MIGRATIONS} when the database is opened.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Errors } from '../errors.ts';

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
];

/** Options of {@link openStatsDb}. */
export interface StatsDbOptions {
  /** Open an existing database without writing (the `stats` command). */
  readonly?: boolean;
}

/**
 * An open statistics database. Every write goes through {@link StatsDb.write}, which runs one
 * transaction and counts it, so tests can hold the batching to its promise.
 */
export class StatsDb {
  readonly sqlite: Database.Database;
  readonly path: string;
  #transactions = 0;

  constructor(sqlite: Database.Database, path: string) {
    this.sqlite = sqlite;
    this.path = path;
  }

  /** Write transactions run so far by this connection. */
  get transactions(): number {
    return this.#transactions;
  }

  /** The schema version on disk. */
  get schemaVersion(): number {
    return this.sqlite.pragma('user_version', { simple: true }) as number;
  }

  /** Runs `fn` in one immediate transaction. */
  write<T>(fn: () => T): T {
    this.#transactions += 1;
    return this.sqlite.transaction(fn).immediate();
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }
}

/** The database path for a storage root. */
export function statsPath(storageDir: string): string {
  return join(storageDir, STATS_FILE);
}

/**
 * Opens (creating and migrating unless read-only) the statistics database. `:memory:` works for
 * unit tests.
 *
 * @example const db = openStatsDb('/var/cache/crates/stats.sqlite');
 */
export function openStatsDb(path: string, options: StatsDbOptions = {}): StatsDb {
  let sqlite: Database.Database;
  try {
    sqlite = new Database(path, { readonly: options.readonly ?? false, fileMustExist: false });
  } catch (cause) {
    throw Errors.CARGO_CACHER_STORAGE(
      `cannot open the statistics database ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const db = new StatsDb(sqlite, path);
  try {
    if (!options.readonly) {
      // WAL: readers (the dashboard, `cargo-cacher stats`) never wait for the batch writer.
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = NORMAL');
    }
    sqlite.pragma('busy_timeout = 2000');
    migrate(db, options.readonly ?? false);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Applies the missing migrations, each in its own transaction with its version bump. */
function migrate(db: StatsDb, readonly: boolean): void {
  const current = db.schemaVersion;
  if (current > MIGRATIONS.length) {
    throw Errors.CARGO_CACHER_STORAGE(
      `the statistics database ${db.path} has schema version ${current}, newer than this ` +
        `cargo-cacher knows (${MIGRATIONS.length}); upgrade cargo-cacher or move the file away`,
    );
  }
  if (current === MIGRATIONS.length) return;
  if (readonly) {
    throw Errors.CARGO_CACHER_STORAGE(
      `the statistics database ${db.path} has schema version ${current}; start the proxy once ` +
        'to upgrade it',
    );
  }
  for (let version = current; version < MIGRATIONS.length; version += 1) {
    db.write(() => {
      db.sqlite.exec(MIGRATIONS[version] as string);
      if (version === 0) {
        db.sqlite
          .prepare('INSERT INTO meta (key, value) VALUES (?, ?)')
          .run('created_at', String(Date.now()));
      }
      db.sqlite.pragma(`user_version = ${version + 1}`);
    });
  }
}
