/**
 * @module
 * The catalogue: what the cache holds, one SQLite row per stored object (key, crate name and
 * version, size, sha256, when stored, when last served, pinned), with the totals per area kept
 * by triggers. Every "what do we hold, how big, what was served when" question is an indexed
 * lookup here instead of a walk of the store, so no cost grows with the size of the cache.
 *
 * It lives at `<-i>/catalogue.sqlite`, next to the statistics (one file each: the statistics can
 * be deleted to reset them without forgetting what is held). The store wrapper in
 * `tracked-store.ts` records every publish and delete here in the same step; last-served times
 * are batched and written once a second, like the statistics. Whatever a crash left unrecorded
 * (a publish killed before its row) is repaired by the reconcile (`jobs/reconcile.ts`).
 */
import { join } from 'node:path';
import { crateKey, crateLabel, parseCrateKey, parseCrateLabel } from '../registry/crate-id.ts';
import { crateNameFromIndexPath } from '../registry/crate-name.ts';
import { type Database, type DatabaseOptions, openDatabase } from '../sqlite.ts';
import { type Area, CATALOGUE_FILE, CATALOGUE_SCHEMA } from './catalogue-schema.ts';

export type { Area } from './catalogue-schema.ts';

/** Objects and bytes of one area. */
export interface AreaTotal {
  objects: number;
  bytes: number;
}

/** One catalogue row. */
export interface CatalogueObject {
  key: string;
  area: Area;
  name: string | null;
  version: string | null;
  size: number;
  sha256: string | null;
  storedAt: number;
  lastServedAt: number | null;
  usedAt: number;
  pinned: boolean;
}

/** A blob as a store listing reports it (what a reconcile adopts). */
export interface ListedBlob {
  key: string;
  size: number;
  mtimeMs: number;
}

/** Options of {@link Catalogue.open}. */
export interface CatalogueOptions extends DatabaseOptions {
  now?: () => number;
  /** `name@version` labels never removed by expiration or `--max-size`. */
  pinned?: ReadonlySet<string>;
  /** How often batched last-served times are written; default 1 s. 0: only on {@link flush}. */
  flushIntervalMs?: number;
  /** Told when a background flush fails (it is tried again at the next one). */
  onFlushError?: (err: unknown) => void;
}

/** What the key of a stored object says about it. */
interface KeyFacts {
  area: Area;
  name: string | null;
  version: string | null;
}

/** The meta entry present while a server runs on the catalogue. */
const SESSION = 'session_open';

/** Deleted keys written in one transaction at most. */
const DELETE_BATCH = 500;

/** After a background flush failed, the next try. */
const FLUSH_RETRY_MS = 10_000;

/** Rows read per query when walking the catalogue: a walk never holds more than this. */
export const PAGE_ROWS = 1000;

const COLUMNS = `key, area, name, version, size, sha256, stored_at AS storedAt,
  last_served_at AS lastServedAt, used_at AS usedAt, pinned`;

/** The catalogue of one storage root. */
export class Catalogue {
  readonly db: Database;
  readonly #now: () => number;
  readonly #pinned: ReadonlySet<string>;
  /** Toolchain keys never removed (see {@link setToolchainPins}). */
  #pinnedToolchains: ReadonlySet<string> = new Set();
  readonly #sql: ReturnType<typeof prepare>;
  /** key → [served at, size]: last-served times waiting for the next flush. */
  readonly #served = new Map<string, [number, number]>();
  /**
   * Deleted keys whose rows go at the next flush (a sweep of 100,000 crates writes them in a
   * few transactions, not one each). Lookups already treat them as gone.
   */
  readonly #deleted = new Set<string>();
  readonly #listeners = new Set<() => void>();
  readonly #heldListeners = new Set<() => void>();
  #heldGeneration = 0;
  readonly #timer: NodeJS.Timeout | undefined;
  #flushPausedUntil = 0;

  private constructor(db: Database, options: CatalogueOptions) {
    this.db = db;
    this.#now = options.now ?? Date.now;
    this.#pinned = options.pinned ?? new Set();
    this.#sql = prepare(db);
    const interval = options.flushIntervalMs ?? 1000;
    if (interval > 0 && !options.readonly) {
      this.#timer = setInterval(() => this.#flushInBackground(options.onFlushError), interval);
      this.#timer.unref();
    }
  }

  /** Opens (creating and migrating) `<storageDir>/catalogue.sqlite`; `:memory:` for tests. */
  static open(storageDir: string, options: CatalogueOptions = {}): Catalogue {
    const path = storageDir === ':memory:' ? storageDir : cataloguePath(storageDir);
    return new Catalogue(openDatabase(path, CATALOGUE_SCHEMA, options), options);
  }

  /** Records a published object (a put that succeeded), replacing any earlier row. */
  recordStored(key: string, stored: { size: number; sha256?: string }): void {
    this.#deleted.delete(key);
    const facts = factsOfKey(key);
    const at = this.#now();
    this.#sql.store.run(
      key,
      facts.area,
      facts.name,
      facts.version,
      stored.size,
      stored.sha256 ?? null,
      at,
      at,
      this.#isPinned(key, facts) ? 1 : 0,
    );
    if (facts.area === 'crates') this.#heldChanged();
    for (const listener of this.#listeners) listener();
  }

  /** Forgets a deleted object (its row goes at the next flush; lookups see it gone now). */
  recordDeleted(key: string): void {
    this.#served.delete(key);
    this.#deleted.add(key);
    if (this.#deleted.size >= DELETE_BATCH) this.flush();
    if (key.startsWith('crates/')) this.#heldChanged();
  }

  /**
   * A number that changes whenever the set of held crates may have changed: views of what is
   * held (`held-view.ts`) keep their answer while it stays the same.
   */
  get heldGeneration(): number {
    return this.#heldGeneration;
  }

  /** Calls `listener` whenever the set of held crates may have changed (the offline git index). */
  onHeldChanged(listener: () => void): () => void {
    this.#heldListeners.add(listener);
    return () => this.#heldListeners.delete(listener);
  }

  #heldChanged(): void {
    this.#heldGeneration++;
    for (const listener of this.#heldListeners) listener();
  }

  /**
   * Notes that an object was served (a hit, a miss just stored, a 304). Written at the next
   * flush; an object stored by someone else (another instance on the bucket, a run killed before
   * its row) is recorded then, with `size`.
   */
  noteServed(key: string, size: number): void {
    if (this.#deleted.has(key)) return;
    this.#served.set(key, [this.#now(), size]);
  }

  /**
   * Writes the pending last-served times, in one transaction. When the write fails (the
   * database busy or its disk full) they stay pending for the next flush.
   */
  flush(): void {
    if (this.#served.size === 0 && this.#deleted.size === 0) return;
    const pending = [...this.#served];
    const deleted = [...this.#deleted];
    this.db.write(() => {
      for (const key of deleted) this.#sql.forget.run(key);
      for (const [key, [at, size]] of pending) {
        const facts = factsOfKey(key);
        const pinned = this.#isPinned(key, facts) ? 1 : 0;
        this.#sql.served.run(key, facts.area, facts.name, facts.version, size, at, at, at, pinned);
      }
    });
    for (const [key, [at]] of pending) {
      if (this.#served.get(key)?.[0] === at) this.#served.delete(key);
    }
    for (const key of deleted) this.#deleted.delete(key);
  }

  #flushInBackground(onError: ((err: unknown) => void) | undefined): void {
    if (this.#now() < this.#flushPausedUntil) return;
    try {
      this.flush();
    } catch (err) {
      // Locked by another process or out of disk: every try blocks for the busy timeout, so
      // wait a while before the next one.
      this.#flushPausedUntil = this.#now() + FLUSH_RETRY_MS;
      onError?.(err);
    }
  }

  /** Calls `listener` after every recorded publish (the `--max-size` keeper listens). */
  onStored(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** True when the catalogue has a row for `key`. */
  has(key: string): boolean {
    return !this.#deleted.has(key) && this.#sql.has.get(key) !== undefined;
  }

  /** The recorded size of `key`, if it has a row. */
  sizeOf(key: string): number | undefined {
    if (this.#deleted.has(key)) return undefined;
    const row = this.#sql.sizeOf.get(key) as { size: number } | undefined;
    return row?.size;
  }

  /** One object's row. */
  get(key: string): CatalogueObject | undefined {
    if (this.#deleted.has(key)) return undefined;
    const row = this.#sql.get.get(key) as RawRow | undefined;
    return row && toObject(row);
  }

  /** The versions of crate `name` held, in no particular order (one indexed query). */
  heldVersions(name: string): string[] {
    this.flush();
    const rows = this.#sql.versions.all(name.toLowerCase()) as { version: string }[];
    return rows.map((row) => row.version);
  }

  /** Objects and bytes per area: one row read per area, at any size. */
  totals(): Record<Area, AreaTotal> {
    if (this.#deleted.size > 0) this.flush();
    const totals = { crates: empty(), index: empty(), other: empty(), toolchains: empty() };
    for (const row of this.#sql.totals.all() as ({ area: Area } & AreaTotal)[]) {
      totals[row.area] = { objects: row.objects, bytes: row.bytes };
    }
    return totals;
  }

  /** Bytes of pinned crates (a walk of the pinned rows only). */
  pinnedBytes(): number {
    return (this.#sql.pinnedBytes.get() as { bytes: number | null }).bytes ?? 0;
  }

  /**
   * Unpinned objects of `area`, least recently used first, read a page at a time (stop
   * iterating and nothing more is read). Pending last-served times are flushed first.
   */
  *leastRecentlyUsed(area: Area): Generator<CatalogueObject> {
    this.flush();
    let after: [number, string] = [Number.MIN_SAFE_INTEGER, ''];
    for (;;) {
      const rows = this.#sql.lru.all(area, after[0], after[1], PAGE_ROWS) as RawRow[];
      for (const row of rows) yield toObject(row);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE_ROWS) return;
      after = [last.usedAt, last.key];
    }
  }

  /**
   * Unpinned index files not stored (fetched or revalidated) since `cutoff`, of crates with no
   * version held. The walk covers only index files older than the cutoff.
   */
  *unusedIndexFiles(cutoff: number): Generator<CatalogueObject> {
    for (const object of this.leastRecentlyUsed('index')) {
      if (object.usedAt >= cutoff) return;
      if (object.name !== null && !this.#sql.anyVersion.get(object.name)) yield object;
    }
  }

  /** Up to `limit` rows with keys after `after` and below `below`, in key order. */
  rowsBetween(after: string, below: string, limit = PAGE_ROWS): CatalogueObject[] {
    this.flush();
    return (this.#sql.range.all(after, below, limit) as RawRow[]).map(toObject);
  }

  /** Names of crates held whose index file is not held (a crash between the two writes). */
  cratesWithoutIndex(): Generator<string> {
    return this.#namesPaged(this.#sql.withoutIndex);
  }

  /** Names (lower case) of the crates with a version held, in order, a page at a time. */
  heldCrateNames(): Generator<string> {
    return this.#namesPaged(this.#sql.heldNames);
  }

  *#namesPaged(query: { all(after: string, limit: number): unknown[] }): Generator<string> {
    this.flush();
    let after = '';
    for (;;) {
      const rows = query.all(after, PAGE_ROWS) as { name: string }[];
      for (const row of rows) yield row.name;
      const last = rows.at(-1);
      if (!last || rows.length < PAGE_ROWS) return;
      after = last.name;
    }
  }

  /**
   * Records objects a store listing showed and the catalogue lacked (a reconcile), keeping any
   * row written meanwhile; `lastServed` gives what the statistics know of a crate.
   */
  adopt(blobs: ListedBlob[], lastServed?: (label: string) => number | undefined): void {
    this.db.write(() => {
      for (const blob of blobs) {
        const facts = factsOfKey(blob.key);
        const label = facts.version === null ? undefined : `${facts.name}@${facts.version}`;
        const served = label === undefined ? undefined : lastServed?.(label);
        const usedAt = Math.max(blob.mtimeMs, served ?? 0);
        const pinned = this.#isPinned(blob.key, facts) ? 1 : 0;
        const at = Math.trunc(blob.mtimeMs);
        this.#sql.adopt.run(
          blob.key,
          facts.area,
          facts.name,
          facts.version,
          blob.size,
          at,
          served ?? null,
          Math.trunc(usedAt),
          pinned,
        );
      }
    });
    if (blobs.some((blob) => blob.key.startsWith('crates/'))) this.#heldChanged();
  }

  /** Corrects sizes and removes rows of objects a reconcile found changed or gone. */
  correct(resized: ListedBlob[], gone: string[]): void {
    if (resized.length === 0 && gone.length === 0) return;
    this.db.write(() => {
      for (const blob of resized) this.#sql.resize.run(blob.size, blob.key);
      for (const key of gone) this.#sql.forget.run(key);
    });
    if (gone.some((key) => key.startsWith('crates/'))) this.#heldChanged();
  }

  /** Marks the crates of `labels` pinned and every other row unpinned (at startup). */
  setPins(labels: ReadonlySet<string>): void {
    this.db.write(() => {
      this.#sql.unpinAll.run();
      for (const label of labels) this.#sql.pin.run(crateKey(parseCrateLabel(label)));
    });
  }

  /** Notes a verified crate: its sha256 is now known to match the index. */
  markVerified(key: string, sha256: string): void {
    this.#sql.verified.run(sha256, this.#now(), key);
  }

  /** A value of the catalogue's own bookkeeping (reconcile time, verify position). */
  getMeta(name: string): string | undefined {
    return (this.#sql.getMeta.get(name) as { value: string } | undefined)?.value;
  }

  setMeta(name: string, value: string | undefined): void {
    if (value === undefined) this.#sql.deleteMeta.run(name);
    else this.#sql.setMeta.run(name, value);
  }

  /**
   * Notes that a server runs on this catalogue, and tells whether the last one stopped without
   * saying so (killed, or the machine died): then a publish may have missed its record, and a
   * reconcile is due.
   */
  beginSession(): boolean {
    const unclean = this.getMeta(SESSION) !== undefined;
    this.setMeta(SESSION, String(process.pid));
    return unclean;
  }

  /** Notes a clean stop (everything recorded). */
  endSession(): void {
    this.flush();
    this.setMeta(SESSION, undefined);
  }

  /** Writes what is pending and closes the database. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    try {
      this.flush();
    } finally {
      this.db.close();
    }
  }

  /**
   * Marks exactly these toolchain files pinned (the files of the channels `--rustup-mirror`
   * follows, which change as the channels move on), and every other toolchain file unpinned.
   */
  setToolchainPins(keys: Iterable<string>): void {
    const pinned = new Set(keys);
    this.db.write(() => {
      this.#sql.unpinToolchains.run();
      for (const key of pinned) this.#sql.pin.run(key);
    });
    this.#pinnedToolchains = pinned;
  }

  #isPinned(key: string, facts: KeyFacts): boolean {
    if (facts.area === 'toolchains') return this.#pinnedToolchains.has(key);
    return facts.version !== null && this.#pinned.has(`${facts.name}@${facts.version}`);
  }
}

/** The catalogue path for a storage root. */
export function cataloguePath(storageDir: string): string {
  return join(storageDir, CATALOGUE_FILE);
}

/** Area, crate name and version of a key, as the caches name their keys. */
export function factsOfKey(key: string): KeyFacts {
  if (key.startsWith('crates/')) {
    const id = parseCrateKey(key);
    return { area: 'crates', name: id?.name ?? null, version: id?.version ?? null };
  }
  if (key.startsWith('index/')) {
    return { area: 'index', name: crateNameFromIndexPath(key.slice(6)) ?? null, version: null };
  }
  if (key.startsWith('toolchains/')) return { area: 'toolchains', name: null, version: null };
  return { area: 'other', name: null, version: null };
}

/** `name@version` of a crate row. */
export function labelOf(object: CatalogueObject): string | undefined {
  if (object.name === null || object.version === null) return undefined;
  return crateLabel({ name: object.name, version: object.version });
}

interface RawRow extends Omit<CatalogueObject, 'pinned'> {
  pinned: number;
}

function toObject(row: RawRow): CatalogueObject {
  return { ...row, pinned: row.pinned === 1 };
}

function empty(): AreaTotal {
  return { objects: 0, bytes: 0 };
}

function prepare(db: Database) {
  const s = (sql: string) => db.sqlite.prepare(sql);
  return {
    store:
      s(`INSERT INTO object (key, area, name, version, size, sha256, stored_at, used_at, pinned)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
        stored_at = excluded.stored_at, used_at = max(used_at, excluded.used_at),
        verified_at = NULL`),
    served: s(`INSERT INTO object
        (key, area, name, version, size, stored_at, last_served_at, used_at, pinned)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET
        last_served_at = max(coalesce(last_served_at, 0), excluded.last_served_at),
        used_at = max(used_at, excluded.used_at)`),
    adopt: s(`INSERT INTO object
        (key, area, name, version, size, stored_at, last_served_at, used_at, pinned)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`),
    forget: s('DELETE FROM object WHERE key = ?'),
    resize: s('UPDATE object SET size = ?, sha256 = NULL, verified_at = NULL WHERE key = ?'),
    has: s('SELECT 1 FROM object WHERE key = ?'),
    sizeOf: s('SELECT size FROM object WHERE key = ?'),
    get: s(`SELECT ${COLUMNS} FROM object WHERE key = ?`),
    versions: s("SELECT version FROM object WHERE area = 'crates' AND name = ?"),
    anyVersion: s("SELECT 1 FROM object WHERE area = 'crates' AND name = ? LIMIT 1"),
    heldNames: s(`SELECT DISTINCT name FROM object INDEXED BY object_by_crate
      WHERE area = 'crates' AND name > ? ORDER BY name LIMIT ?`),
    totals: s('SELECT area, objects, bytes FROM area_total'),
    pinnedBytes: s("SELECT sum(size) AS bytes FROM object WHERE area = 'crates' AND pinned = 1"),
    lru: s(`SELECT ${COLUMNS} FROM object
      WHERE area = ? AND pinned = 0 AND (used_at, key) > (?, ?)
      ORDER BY used_at, key LIMIT ?`),
    range: s(`SELECT ${COLUMNS} FROM object WHERE key > ? AND key < ? ORDER BY key LIMIT ?`),
    withoutIndex: s(`SELECT DISTINCT name FROM object AS c INDEXED BY object_by_crate
      WHERE c.area = 'crates' AND c.name > ? AND NOT EXISTS
        (SELECT 1 FROM object AS i WHERE i.area = 'index' AND i.name = c.name)
      ORDER BY name LIMIT ?`),
    unpinAll: s("UPDATE object SET pinned = 0 WHERE area = 'crates' AND pinned = 1"),
    unpinToolchains: s("UPDATE object SET pinned = 0 WHERE area = 'toolchains' AND pinned = 1"),
    pin: s('UPDATE object SET pinned = 1 WHERE key = ?'),
    verified: s('UPDATE object SET sha256 = ?, verified_at = ? WHERE key = ?'),
    getMeta: s('SELECT value FROM meta WHERE key = ?'),
    setMeta: s(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    deleteMeta: s('DELETE FROM meta WHERE key = ?'),
  };
}
