/**
 * @module
 * SQLite databases under the storage root (the statistics, the catalogue): opened in WAL mode,
 * with a schema versioned through `PRAGMA user_version` and brought up to date by ordered
 * migrations when opened.
 *
 * This is the one module that knows the SQLite driver: Node's own `node:sqlite`, so installing
 * cargo-cacher compiles nothing. Callers prepare statements on {@link Database.sqlite} and write
 * through {@link Database.write}; the {@link SqliteConnection} shape they use is also
 * better-sqlite3's, which `bench/sqlite.ts` compares through {@link DatabaseOptions.driver}.
 */
import { Errors } from './errors.ts';

/** What a database holds and how its schema is built. */
export interface Schema {
  /** How errors name the database: `the statistics database`. */
  label: string;
  /**
   * Migrations, in order: entry `i` takes the schema from version `i` to `i + 1`. Never edit a
   * released entry; append a new one.
   */
  migrations: readonly string[];
  /**
   * How long a write waits for another connection's lock, blocking the event loop meanwhile
   * (SQLite's busy handler sleeps in the calling thread); default 2 s.
   */
  busyTimeoutMs?: number;
  /** SQLite's page cache, in KiB; default 16 MB (see {@link openDatabase}). */
  cacheKiB?: number;
  /** Runs once, in the transaction that creates the schema (to note when it was created). */
  onCreate?: (db: Database) => void;
}

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

/** An open SQLite connection: what cargo-cacher uses of a driver. */
export interface SqliteConnection {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  close(): void;
}

/** Opens a connection to `path` (created when missing unless `readonly`). */
export type SqliteDriver = (path: string, options: { readonly: boolean }) => SqliteConnection;

/** Options of {@link openDatabase}. */
export interface DatabaseOptions {
  /** Open an existing database without writing (the `stats` command). */
  readonly?: boolean;
  /** The SQLite driver; {@link nodeSqliteDriver} unless a benchmark compares another. */
  driver?: SqliteDriver;
}

/**
 * An open database. Every write goes through {@link StatsDb.write}, which runs one
 * transaction and counts it, so tests can hold the batching to its promise.
 */
export class Database {
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
 * Opens (creating and migrating unless read-only) a database. `:memory:` works for unit tests.
 *
 * @example const db = openDatabase('/var/cache/crates/stats.sqlite', STATS_SCHEMA);
 */
export function openDatabase(
  path: string,
  schema: Schema,
  options: DatabaseOptions = {},
): Database {
  const readonly = options.readonly ?? false;
  let sqlite: SqliteConnection;
  try {
    sqlite = (options.driver ?? nodeSqliteDriver)(path, { readonly });
  } catch (cause) {
    throw Errors.CARGO_CACHER_STORAGE(
      `cannot open ${schema.label} ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const db = new Database(sqlite, path);
  try {
    if (!readonly) {
      // WAL: readers (the dashboard, `cargo-cacher stats`) never wait for the batch writer.
      sqlite.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
    }
    // A page cache of up to 16 MB (SQLite's default is 2 MB, better-sqlite3's 16 MB): the
    // crate_version table of a busy cache outgrows 2 MB, and every flush then reads pages back.
    sqlite.exec(
      `PRAGMA busy_timeout = ${schema.busyTimeoutMs ?? 2000}; PRAGMA cache_size = -${schema.cacheKiB ?? 16000}`,
    );
    migrate(db, schema, readonly);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Applies the missing migrations, each in its own transaction with its version bump. */
function migrate(db: Database, schema: Schema, readonly: boolean): void {
  const current = db.schemaVersion;
  const { migrations, label } = schema;
  if (current > migrations.length) {
    throw Errors.CARGO_CACHER_STORAGE(
      `${label} ${db.path} has schema version ${current}, newer than this ` +
        `cargo-cacher knows (${migrations.length}); upgrade cargo-cacher or move the file away`,
    );
  }
  if (current === migrations.length) return;
  if (readonly) {
    throw Errors.CARGO_CACHER_STORAGE(
      `${label} ${db.path} has schema version ${current}; start the proxy once to upgrade it`,
    );
  }
  for (let version = current; version < migrations.length; version += 1) {
    db.write(() => {
      db.sqlite.exec(migrations[version] as string);
      if (version === 0) schema.onCreate?.(db);
      db.sqlite.exec(`PRAGMA user_version = ${version + 1}`);
    });
  }
}
