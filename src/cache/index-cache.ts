/**
 * @module
 * The sparse index cache: serves index files (and upstream's `config.json`) from storage,
 * revalidating them upstream once they are older than the TTL, and falling back to the stale
 * copy when upstream fails.
 */
import { type CacherError, Errors, isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { crateNameFromIndexPath } from '../registry/crate-name.ts';
import { parseIndexFile } from '../registry/index-entry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { FetchOptions, IndexFetch, Validators } from '../upstream/sparse-index.ts';
import {
  createIndexFile,
  decodeIndexRecord,
  encodeIndexRecord,
  type IndexFile,
} from './index-record.ts';
import { LruMap } from './lru.ts';
import { SingleFlight } from './single-flight.ts';
import type { StorageWriteGuard } from './storage-guard.ts';

/** Where index files come from: the upstream sparse index, or the git mirror (later). */
export interface IndexSource {
  fetch(path: string, validators?: Validators, options?: FetchOptions): Promise<IndexFetch>;
  /** True when the source is on this machine (the git mirror): usable with `--offline`. */
  readonly local?: boolean;
  /** False when a local source has nothing to answer from (no upstream index mirrored). */
  available?(): boolean;
}

/** How a lookup was answered, for the `X-Cache-Status` header, logs and stats. */
export type IndexOutcome = 'hit' | 'miss' | 'revalidated' | 'stale';

/** The result of {@link IndexCache.get}. */
export type IndexLookup =
  | { found: true; file: IndexFile; outcome: IndexOutcome; upstreamBytes: number }
  | { found: false };

/** What {@link IndexCache} needs. */
export interface IndexCacheDeps {
  store: BlobStore;
  source: IndexSource | undefined;
  ttlMs: number;
  offline: boolean;
  log: AppLogger;
  /** Logs storage that takes no writes once per minute instead of once per index file. */
  storageGuard?: StorageWriteGuard;
  now?: () => number;
  /**
   * Told when a revalidation shows versions gone upstream (their lines removed), or the whole
   * file gone (`'all'`): their cached crates are purged (`jobs/removals.ts`).
   */
  onRemoved?: (name: string, versions: readonly string[] | 'all') => void;
}

/** Hot index files kept in memory, bounded by bytes. */
const MEMORY_BYTES = 64 * 1024 * 1024;
/** "Cache negative answers briefly": an unknown crate is asked upstream again after this. */
const NEGATIVE_TTL_MS = 30_000;
const NEGATIVE_ENTRIES = 10_000;

/** Storage key of a cached index path (`se/rd/serde`, `config.json`). */
export function indexKey(path: string): string {
  return `index/${path}`;
}

/** The sparse index cache. */
export class IndexCache {
  readonly #deps: IndexCacheDeps;
  readonly #now: () => number;
  readonly #memory = new LruMap<string, IndexFile>(MEMORY_BYTES, (file) => file.body.length + 256);
  readonly #missing = new LruMap<string, number>(NEGATIVE_ENTRIES);
  readonly #flights = new SingleFlight<IndexLookup>();
  #upstreamFailing = false;

  constructor(deps: IndexCacheDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Returns the index file at `path`. Fresh cached copies are served as they are; older ones
   * are revalidated upstream (a 304 only renews them); with `revalidate` the TTL is ignored.
   */
  async get(path: string, options: { revalidate?: boolean } = {}): Promise<IndexLookup> {
    const cached = await this.peek(path);
    if (cached && (this.#isFresh(cached) || !this.#canReachUpstream()) && !options.revalidate) {
      return { found: true, file: cached, outcome: 'hit', upstreamBytes: 0 };
    }
    if (!this.#canReachUpstream()) return cached ? hit(cached) : { found: false };
    const negative = this.#missing.get(path);
    if (!cached && negative !== undefined && negative > this.#now()) return { found: false };
    return this.#flights.run(path, () => this.#refresh(path, cached));
  }

  /**
   * The in-memory copy when it can be served as it is (fresh, or upstream out of reach): the
   * hot path, answered without a promise or a storage read.
   */
  hot(path: string): IndexFile | undefined {
    const remembered = this.#memory.get(path);
    if (remembered && (this.#isFresh(remembered) || !this.#canReachUpstream())) return remembered;
    return undefined;
  }

  /** The cached copy, without contacting upstream. */
  async peek(path: string): Promise<IndexFile | undefined> {
    const remembered = this.#memory.get(path);
    if (remembered) return remembered;
    const record = await this.#deps.store.read(indexKey(path));
    const file = record && decodeIndexRecord(record);
    if (file) this.#memory.set(path, file);
    return file || undefined;
  }

  /** How long a cached file is served before it is revalidated (`--index-ttl`). */
  get ttlMs(): number {
    return this.#deps.ttlMs;
  }

  /** Changes `--index-ttl` for every later lookup (a reload). */
  setTtl(ttlMs: number): void {
    this.#deps.ttlMs = ttlMs;
  }

  /** Upstream fetches running now (single flights), for the in-flight gauge. */
  get inFlight(): number {
    return this.#flights.size;
  }

  /**
   * True while upstream cannot be reached: the last attempt to fetch or revalidate an index file
   * failed (network, timeout, 5xx, open circuit) and none has succeeded since.
   */
  get upstreamFailing(): boolean {
    return this.#upstreamFailing;
  }

  /** False with `--offline` or without an index source: only cached files can be served. */
  get canReachUpstream(): boolean {
    return this.#canReachUpstream();
  }

  #isFresh(file: IndexFile): boolean {
    return this.#now() - file.checkedAt < this.#deps.ttlMs;
  }

  #canReachUpstream(): boolean {
    const { source, offline } = this.#deps;
    if (source === undefined) return false;
    return !offline || (source.local === true && source.available?.() !== false);
  }

  async #refresh(path: string, cached: IndexFile | undefined): Promise<IndexLookup> {
    const source = this.#deps.source as IndexSource;
    let fetched: IndexFetch;
    try {
      fetched = await source.fetch(path, cached?.upstream, {
        staleAvailable: cached !== undefined,
      });
    } catch (err) {
      this.#upstreamFailing = true;
      return this.#onUpstreamError(path, cached, err);
    }
    this.#upstreamFailing = false;
    switch (fetched.kind) {
      case 'not-modified':
        if (!cached) return this.#onUpstreamError(path, cached, unexpected304(path));
        return this.#save(path, { ...cached, checkedAt: this.#now() }, 'revalidated', 0);
      case 'not-found':
        await this.#forget(path);
        if (cached) this.#reportRemoved(path, cached.body, undefined);
        return { found: false };
      case 'modified': {
        const file = createIndexFile(fetched.body, fetched.validators, this.#now());
        const outcome = cached ? 'revalidated' : 'miss';
        if (cached) this.#reportRemoved(path, cached.body, fetched.body);
        return this.#save(path, file, outcome, fetched.body.length);
      }
    }
  }

  /**
   * Tells the removal observer which versions the old file listed and the new one does not (all
   * of them when the file itself is gone). A yanked version keeps its line: not a removal.
   */
  #reportRemoved(path: string, before: Buffer, after: Buffer | undefined): void {
    const observer = this.#deps.onRemoved;
    if (!observer) return;
    const name = crateNameFromIndexPath(path);
    if (name === undefined) return;
    const kept = new Set(after ? parseIndexFile(after).map((entry) => entry.version) : []);
    const removed = parseIndexFile(before)
      .map((entry) => entry.version)
      .filter((version) => !kept.has(version));
    if (after === undefined || removed.length > 0)
      observer(name, after === undefined ? 'all' : removed);
  }

  async #save(
    path: string,
    file: IndexFile,
    outcome: IndexOutcome,
    upstreamBytes: number,
  ): Promise<IndexLookup> {
    this.#memory.set(path, file);
    this.#missing.delete(path);
    try {
      await this.#deps.store.put(indexKey(path), encodeIndexRecord(file));
    } catch (err) {
      // Serving goes on from memory; the next request tries to store it again.
      if (!this.#deps.storageGuard?.report(err, indexKey(path))) {
        this.#deps.log.warn({ err, path }, 'could not store index file');
      }
    }
    return { found: true, file, outcome, upstreamBytes };
  }

  async #forget(path: string): Promise<void> {
    this.#memory.delete(path);
    this.#missing.set(path, this.#now() + NEGATIVE_TTL_MS);
    // A crate deleted upstream is deleted here too, as crates.io deletes the object.
    await this.#deps.store.delete(indexKey(path));
  }

  #onUpstreamError(path: string, cached: IndexFile | undefined, err: unknown): IndexLookup {
    const error = asCacherError(err);
    if (cached) {
      this.#deps.log.warn({ path, code: error.code }, `serving stale ${path}: ${error.message}`);
      return { found: true, file: cached, outcome: 'stale', upstreamBytes: 0 };
    }
    throw error;
  }
}

function hit(file: IndexFile): IndexLookup {
  return { found: true, file, outcome: 'hit', upstreamBytes: 0 };
}

function unexpected304(path: string): CacherError {
  return Errors.CARGO_CACHER_UPSTREAM_INVALID(`upstream answered 304 for ${path} without a cache`);
}

function asCacherError(err: unknown): CacherError {
  if (isCacherError(err)) return err;
  return Errors.CARGO_CACHER_UPSTREAM_INVALID(`upstream failed: ${(err as Error).message}`, {
    cause: err,
  });
}
