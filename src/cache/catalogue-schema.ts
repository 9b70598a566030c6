/**
 * @module
 * The catalogue's schema: one row per stored object, with the totals per area kept up to date by
 * triggers, so "how much do we hold" is one row read at any size. See `catalogue.ts`.
 */
import type { Schema } from '../sqlite.ts';

/** The file name below the storage root (`-i`), next to `stats.sqlite`. */
export const CATALOGUE_FILE = 'catalogue.sqlite';

/** The areas of the store: the first segment of a key. */
export const AREAS = ['crates', 'index', 'other', 'toolchains'] as const;
export type Area = (typeof AREAS)[number];

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  -- One row per stored object. used_at is the later of stored_at and last_served_at: the order
  -- expiration and --max-size remove in (least recently used first). sha256 is NULL for an
  -- object adopted by a reconcile and not verified since.
  CREATE TABLE object (
    key TEXT PRIMARY KEY,
    area TEXT NOT NULL CHECK (area IN ('crates', 'index', 'other')),
    name TEXT,
    version TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT,
    stored_at INTEGER NOT NULL,
    last_served_at INTEGER,
    used_at INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    verified_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX object_by_use ON object (area, pinned, used_at);
  CREATE INDEX object_by_crate ON object (name, version) WHERE area = 'crates';
  CREATE INDEX object_index_by_name ON object (name) WHERE area = 'index';

  -- Objects and bytes per area, kept by the triggers below in the same transaction as the row.
  CREATE TABLE area_total (
    area TEXT PRIMARY KEY, objects INTEGER NOT NULL, bytes INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO area_total VALUES ('crates', 0, 0), ('index', 0, 0), ('other', 0, 0);

  CREATE TRIGGER object_added AFTER INSERT ON object BEGIN
    UPDATE area_total SET objects = objects + 1, bytes = bytes + NEW.size WHERE area = NEW.area;
  END;
  CREATE TRIGGER object_removed AFTER DELETE ON object BEGIN
    UPDATE area_total SET objects = objects - 1, bytes = bytes - OLD.size WHERE area = OLD.area;
  END;
  CREATE TRIGGER object_resized AFTER UPDATE OF size ON object BEGIN
    UPDATE area_total SET bytes = bytes - OLD.size + NEW.size WHERE area = NEW.area;
  END;
  `,
  // Toolchain files (rustup's dist server, `toolchains/` keys) get an area of their own, so
  // --max-size, expiration and verify cover them. SQLite cannot change a CHECK constraint in
  // place: the table is rebuilt once (its indexes and triggers with it).
  `
  CREATE TABLE object_new (
    key TEXT PRIMARY KEY,
    area TEXT NOT NULL CHECK (area IN ('crates', 'index', 'other', 'toolchains')),
    name TEXT,
    version TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT,
    stored_at INTEGER NOT NULL,
    last_served_at INTEGER,
    used_at INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    verified_at INTEGER
  ) WITHOUT ROWID;
  INSERT INTO object_new SELECT key, area, name, version, size, sha256, stored_at,
    last_served_at, used_at, pinned, verified_at FROM object;
  DROP TABLE object;
  ALTER TABLE object_new RENAME TO object;
  CREATE INDEX object_by_use ON object (area, pinned, used_at);
  CREATE INDEX object_by_crate ON object (name, version) WHERE area = 'crates';
  CREATE INDEX object_index_by_name ON object (name) WHERE area = 'index';
  CREATE TRIGGER object_added AFTER INSERT ON object BEGIN
    UPDATE area_total SET objects = objects + 1, bytes = bytes + NEW.size WHERE area = NEW.area;
  END;
  CREATE TRIGGER object_removed AFTER DELETE ON object BEGIN
    UPDATE area_total SET objects = objects - 1, bytes = bytes - OLD.size WHERE area = OLD.area;
  END;
  CREATE TRIGGER object_resized AFTER UPDATE OF size ON object BEGIN
    UPDATE area_total SET bytes = bytes - OLD.size + NEW.size WHERE area = NEW.area;
  END;
  INSERT INTO area_total VALUES ('toolchains', 0, 0);
  `,
];

/** The catalogue database's schema. */
export const CATALOGUE_SCHEMA: Schema = {
  label: 'the catalogue',
  migrations: MIGRATIONS,
  // Records are written on the request path: a lock held elsewhere (a `cargo-cacher gc` batch)
  // may stall it this long at most. A record that gives up is repaired by a hit or the reconcile.
  busyTimeoutMs: 250,
  // Lookups are by primary key, a few pages each, and the operating system caches the file:
  // SQLite's default 2 MB keeps a full mirror's memory from growing with the catalogue.
  cacheKiB: 2000,
  onCreate(db) {
    db.sqlite
      .prepare('INSERT INTO meta (key, value) VALUES (?, ?)')
      .run('created_at', String(Date.now()));
  },
};
