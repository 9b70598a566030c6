/**
 * @module
 * The reconcile: walks the store and brings the catalogue in line with it. Objects the catalogue
 * lacks are adopted (a publish killed before its row, a store written by a cargo-cacher without
 * a catalogue, objects other instances put in a shared bucket); rows whose object is gone are
 * dropped; sizes that differ are corrected. Both sides are read in key order and merged, a page
 * at a time, so memory stays flat at any size; the walk pauses every page so that requests go
 * first. Afterwards, stored crates whose index file is missing get it fetched again (or, when
 * the index no longer lists them, are removed): what a crash between the two writes leaves.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Catalogue,
  type CatalogueObject,
  type ListedBlob,
  PAGE_ROWS,
} from '../cache/catalogue.ts';
import { type IndexCache, indexKey } from '../cache/index-cache.ts';
import type { AppLogger } from '../logger.ts';
import { crateKey, crateLabel } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { findVersion } from '../registry/index-entry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { type ListingSource, sharedListing } from './bucket-listing.ts';

/** The catalogue meta entry holding when the last reconcile finished (ms). */
export const RECONCILED_AT = 'reconciled_at';

/** How often the reconcile runs at most (and how long a shared bucket listing is used). */
export const RECONCILE_EVERY_MS = 24 * 60 * 60 * 1000;

/** The areas walked, as the caches name their keys. */
const PREFIXES = ['crates', 'index', 'toolchains'] as const;

/** Listed blobs handled between two pauses (and written in one transaction). */
const BATCH = 500;

/** What a reconcile needs. */
export interface ReconcileDeps {
  /** The store to list (reads only). */
  store: BlobStore;
  catalogue: Catalogue;
  log: AppLogger;
  /** The index cache, to restore missing index files; without it that step is skipped. */
  index?: IndexCache;
  /** Removes crates through the catalogue-tracked store (a version the index no longer lists). */
  trackedStore?: BlobStore;
  /** What the statistics know of when an adopted crate was last served. */
  lastServed?: (label: string) => number | undefined;
  now?: () => number;
  /** Pause after each batch, so the walk yields to requests; default 5 ms. */
  pauseMs?: number;
  signal?: AbortSignal;
}

/** What a reconcile found. */
export interface ReconcileReport {
  listed: number;
  adopted: number;
  resized: number;
  dropped: number;
  /** Crates whose missing index file was fetched again, or that were removed without one. */
  indexRestored: number;
  cratesRemoved: number;
  durationMs: number;
}

/**
 * Reconciles the catalogue with the store: by listing it, or, on a bucket shared by several
 * instances, from the listing they share (`undefined` when another instance is making it: try
 * later).
 */
export async function reconcileWithStore(
  deps: ReconcileDeps,
  options: { freshListing?: boolean } = {},
): Promise<ReconcileReport | undefined> {
  if (!deps.store.shared) return reconcile(deps);
  const now = deps.now ?? Date.now;
  // By hand (`cargo-cacher reconcile`) the bucket is listed anew; the daily one shares a listing.
  const maxAgeMs = options.freshListing ? 0 : RECONCILE_EVERY_MS;
  const source = await sharedListing(deps.store, { now, maxAgeMs });
  return source && reconcile(deps, source);
}

/** Lists the store (or reads `source`, a listing of it in key order) and reconciles. */
export async function reconcile(
  deps: ReconcileDeps,
  source?: ListingSource,
): Promise<ReconcileReport> {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const listing = source?.listing ?? ((prefix: string) => deps.store.list(prefix));
  const listedAt = source?.listedAt ?? startedAt;
  const report: ReconcileReport = {
    listed: 0,
    adopted: 0,
    resized: 0,
    dropped: 0,
    indexRestored: 0,
    cratesRemoved: 0,
    durationMs: 0,
  };
  for (const prefix of PREFIXES) {
    await mergeArea(deps, listing(prefix), prefix, listedAt, report);
    if (deps.signal?.aborted) return report;
  }
  if (deps.index) await restoreMissingIndexFiles(deps, report);
  deps.catalogue.setMeta(RECONCILED_AT, String(now()));
  report.durationMs = now() - startedAt;
  return report;
}

/**
 * Merges one area: the listing and the catalogue rows of `prefix/`, both in key order (byte
 * order: what S3 lists in, what the filesystem store sorts to, and SQLite's BINARY collation).
 */
async function mergeArea(
  deps: ReconcileDeps,
  listed: AsyncIterable<ListedBlob>,
  prefix: string,
  listedAt: number,
  report: ReconcileReport,
): Promise<void> {
  // '0' is the character after '/': the rows below `prefix/`.
  const rows = new RowCursor(deps.catalogue, `${prefix}/`, `${prefix}0`);
  const batch: Batch = { adopted: [], resized: [], gone: [] };
  let handled = 0;
  for await (const blob of listed) {
    if (deps.signal?.aborted) return;
    report.listed++;
    for (let row = rows.current(); row && row.key < blob.key; row = rows.next()) {
      if (row.usedAt < listedAt) batch.gone.push(row.key);
    }
    const row = rows.current();
    if (row?.key === blob.key) {
      if (row.size !== blob.size) batch.resized.push(blob);
      rows.next();
    } else {
      batch.adopted.push(blob);
    }
    if (++handled % BATCH === 0) await commit(deps, batch, rows, report);
  }
  // Rows the listing did not show are gone, unless written or served since it was made.
  for (let row = rows.current(); row; row = rows.next()) {
    if (row.usedAt < listedAt) batch.gone.push(row.key);
  }
  await commit(deps, batch, rows, report);
}

/**
 * Reads catalogue rows a page at a time, in key order. A row written behind the cursor (an
 * adoption of a key already passed) must not be read back, or it would look like a row the
 * listing lacks: {@link RowCursor.isBehind} tells which keys are safe to write now.
 */
class RowCursor {
  readonly #catalogue: Catalogue;
  readonly #below: string;
  #page: CatalogueObject[] = [];
  #index = 0;
  #after: string;
  #done = false;

  constructor(catalogue: Catalogue, after: string, below: string) {
    this.#catalogue = catalogue;
    this.#after = after;
    this.#below = below;
  }

  current(): CatalogueObject | undefined {
    if (this.#index >= this.#page.length && !this.#done) this.#read();
    return this.#page[this.#index];
  }

  next(): CatalogueObject | undefined {
    this.#index++;
    return this.current();
  }

  /** True when a row with `key` written now will not be read by a later page. */
  isBehind(key: string): boolean {
    return this.#done || key <= this.#after;
  }

  #read(): void {
    this.#page = this.#catalogue.rowsBetween(this.#after, this.#below, PAGE_ROWS);
    this.#index = 0;
    const last = this.#page.at(-1);
    if (last) this.#after = last.key;
    if (this.#page.length < PAGE_ROWS) this.#done = true;
  }
}

interface Batch {
  adopted: ListedBlob[];
  resized: ListedBlob[];
  gone: string[];
}

/** Writes what the batch found (adoptions the cursor could still read back wait), then pauses. */
async function commit(
  deps: ReconcileDeps,
  batch: Batch,
  rows: RowCursor,
  report: ReconcileReport,
): Promise<void> {
  const ready = batch.adopted.filter((blob) => rows.isBehind(blob.key));
  batch.adopted = batch.adopted.filter((blob) => !rows.isBehind(blob.key));
  deps.catalogue.adopt(ready, deps.lastServed);
  deps.catalogue.correct(batch.resized, batch.gone);
  report.adopted += ready.length;
  report.resized += batch.resized.length;
  report.dropped += batch.gone.length;
  batch.resized = [];
  batch.gone = [];
  await sleep(deps.pauseMs ?? 5);
}

/**
 * Crates held whose index file is not: the index file is fetched again; versions it does not
 * list cannot be verified, so they are removed.
 */
async function restoreMissingIndexFiles(
  deps: ReconcileDeps,
  report: ReconcileReport,
): Promise<void> {
  const index = deps.index as IndexCache;
  const store = deps.trackedStore ?? deps.store;
  for (const name of [...deps.catalogue.cratesWithoutIndex()]) {
    if (deps.signal?.aborted) return;
    const path = indexPath(name);
    let body: Buffer | undefined;
    try {
      const lookup = await index.get(path);
      body = lookup.found ? lookup.file.body : undefined;
    } catch (err) {
      deps.log.warn({ err, crate: name }, 'reconcile: index file unavailable; kept the crates');
      continue;
    }
    if (body !== undefined && (await deps.store.stat(indexKey(path)))) report.indexRestored++;
    for (const version of deps.catalogue.heldVersions(name)) {
      if (body !== undefined && findVersion(body, version)) continue;
      const id = { name, version };
      deps.log.warn({ crate: crateLabel(id) }, 'removing a stored crate its index does not list');
      await store.delete(crateKey(id));
      report.cratesRemoved++;
    }
  }
}
