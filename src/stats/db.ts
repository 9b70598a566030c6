/**
 * @module
 * The statistics database: SQLite (WAL) at `<storage>/stats.sqlite`, so the numbers survive
 * restarts. The schema is versioned through `PRAGMA user_version` and brought up to date by the
 * ordered {@link MIGRATIONS} when the database is opened.
 *
 * This is the one module that knows the SQLite driver: Node's own `node:sqlite`, so installing
 * cargo-cacher compiles nothing. The rest of the statistics code prepares statements on
 * {@link StatsDb.sqlite} and writes through {@link StatsDb.write}; the {@link SqliteConnection}
 * shape they use is also better-sqlite3's, which `bench/sqlite.ts` compares through
 * {@link StatsDbOptions.driver}.
 */
import { join } from 'node:path';
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

/** A value SQLite stores; the same types node:sqlite binds. */
export type SqlValue = null | number | bigint | string | NodeJS.ArrayBufferView;

/** Parameters of a statement: positional values, or one object of named ones (`@name`). */
export type SqlParams = SqlValue[] | [Record<string, SqlValue>, ...SqlValue[]];

/**
 * A prepared statement, as the statistics use one. Rows are objects keyed by column name (with a
 * null prototype under node:sqlite: compare them field by field, or spread them first).
 */
export interface Statement {
  run(...params: SqlParams): unknown;
  get(...params: SqlParams): unknown;
  all(...params: SqlParams): unknown[];
}

/** An open SQLite connection: what the statistics use of a driver. */
export interface SqliteConnection {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  close(): void;
}

/** Opens a connection to `path` (created when missing unless `readonly`). */
export type SqliteDriver = (path: string, options: { readonly: boolean }) => SqliteConnection;

/** Options of {@link openStatsDb}. */
export interface StatsDbOptions {
  /** Open an existing database without writing (the `stats` command). */
  readonly?: boolean;
  /** The SQLite driver; {@link nodeSqliteDriver} unless a benchmark compares another. */
  driver?: SqliteDriver;
}

/**
 * An open statistics database. Every write goes through {@link StatsDb.write}, which runs one
 * transaction and counts it, so tests can hold the batching to its promise.
 */
export class StatsDb {
  readonly sqlite: SqliteConnection;
  readonly path: string;
  #transactions = 0;
  /** Transactions open on this connection: 0, 1, or more for nested writes (savepoints). */
  #depth = 0;
  #open = true;

  constructor(sqlite: SqliteConnection, path: string) {
    this.sqlite = sqlite;
    this.path = path;
  }

  /** Write transactions run so far by this connection. */
  get transactions(): number {
    return this.#transactions;
  }

  /** The schema version on disk. */
  get schemaVersion(): number {
    return Number(this.pragma('user_version'));
  }

  /**
   * Reads a pragma: the first column of its first row (`db.pragma('integrity_check')` is `'ok'`).
   * Set one with `db.sqlite.exec('PRAGMA name = value')`.
   */
  pragma(name: string): unknown {
    const row = this.sqlite.prepare(`PRAGMA ${name}`).get() as Record<string, unknown> | undefined;
    return row === undefined ? undefined : Object.values(row)[0];
  }

  /**
   * Runs `fn` in one immediate transaction (the write lock is taken at the start, so a busy
   * database fails before `fn` runs, not at commit). A write inside a write is a savepoint.
   * When `fn` throws, everything it wrote is rolled back and the error is rethrown.
   */
  write<T>(fn: () => T): T {
    this.#transactions += 1;
    const savepoint = this.#depth > 0 ? `write_${this.#depth}` : undefined;
    this.sqlite.exec(savepoint ? `SAVEPOINT ${savepoint}` : 'BEGIN IMMEDIATE');
    this.#depth += 1;
    try {
      const result = fn();
      this.sqlite.exec(savepoint ? `RELEASE ${savepoint}` : 'COMMIT');
      return result;
    } catch (err) {
      this.#rollback(savepoint);
      throw err;
    } finally {
      this.#depth -= 1;
    }
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.sqlite.close();
  }

  #rollback(savepoint: string | undefined): void {
    try {
      this.sqlite.exec(savepoint ? `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}` : 'ROLLBACK');
    } catch {
      // SQLite already rolled back on its own (a full disk, say); the caller's error is the one
      // that says what happened.
    }
  }
}

/** The database path for a storage root. */
export function statsPath(storageDir: string): string {
  return join(storageDir, STATS_FILE);
}

/** `node:sqlite`, loaded on first use (see {@link loadNodeSqlite}). */
let nodeSqlite: typeof import('node:sqlite') | undefined;

/**
 * Loads `node:sqlite` with its one-time ExperimentalWarning dropped: Node 22 prints it to stderr
 * when the module is first loaded, where a cargo-cacher user would read it as a problem. Only
 * that warning, and only during this load, is dropped: every other warning goes through.
 */
function loadNodeSqlite(): typeof import('node:sqlite') {
  if (nodeSqlite) return nodeSqlite;
  const emitWarning = process.emitWarning;
  process.emitWarning = function dropSqliteWarning(
    this: NodeJS.Process,
    warning: string | Error,
    ...rest: unknown[]
  ) {
    if (!isSqliteExperimentalWarning(warning, rest[0])) {
      Reflect.apply(emitWarning, this, [warning, ...rest]);
    }
  } as typeof process.emitWarning;
  let loaded: typeof import('node:sqlite') | undefined;
  try {
    // Undefined before Node 22.13, where node:sqlite needs a flag (and Node 20 has none).
    loaded = process.getBuiltinModule?.('node:sqlite');
  } finally {
    process.emitWarning = emitWarning;
  }
  if (!loaded) {
    throw new Error(
      `node:sqlite is not available in Node.js ${process.version}; cargo-cacher needs Node.js ` +
        '22.13 or later (24 recommended)',
    );
  }
  nodeSqlite = loaded;
  return loaded;
}

/** Node 22's `emitWarning('SQLite is an experimental feature…', 'ExperimentalWarning')`. */
function isSqliteExperimentalWarning(warning: string | Error, typeOrOptions: unknown): boolean {
  const type =
    typeof typeOrOptions === 'string'
      ? typeOrOptions
      : (typeOrOptions as { type?: unknown } | undefined)?.type;
  const message = typeof warning === 'string' ? warning : warning.message;
  return type === 'ExperimentalWarning' && message.startsWith('SQLite ');
}

/** The driver cargo-cacher runs on: Node's own `node:sqlite` (Node ≥ 22.13). */
export const nodeSqliteDriver: SqliteDriver = (path, options) => {
  const { DatabaseSync } = loadNodeSqlite();
  return new DatabaseSync(path, { readOnly: options.readonly });
};

/**
 * Opens (creating and migrating unless read-only) the statistics database. `:memory:` works for
 * unit tests.
 *
 * @example const db = openStatsDb('/var/cache/crates/stats.sqlite');
 */
export function openStatsDb(path: string, options: StatsDbOptions = {}): StatsDb {
  const readonly = options.readonly ?? false;
  let sqlite: SqliteConnection;
  try {
    sqlite = (options.driver ?? nodeSqliteDriver)(path, { readonly });
  } catch (cause) {
    throw Errors.CARGO_CACHER_STORAGE(
      `cannot open the statistics database ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const db = new StatsDb(sqlite, path);
  try {
    if (!readonly) {
      // WAL: readers (the dashboard, `cargo-cacher stats`) never wait for the batch writer.
      sqlite.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
    }
    // A page cache of up to 16 MB (SQLite's default is 2 MB, better-sqlite3's 16 MB): the
    // crate_version table of a busy cache outgrows 2 MB, and every flush then reads pages back.
    sqlite.exec('PRAGMA busy_timeout = 2000; PRAGMA cache_size = -16000');
    migrate(db, readonly);
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
      db.sqlite.exec(`PRAGMA user_version = ${version + 1}`);
    });
  }
}
