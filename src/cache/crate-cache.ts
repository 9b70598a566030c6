/**
 * @module
 * The crate cache: serves `.crate` files from storage, and on a miss downloads them once from
 * upstream, verifying the sha256 against the index before anything is stored or served.
 */
import type { Readable } from 'node:stream';
import { Errors, isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { type CrateId, crateKey, crateLabel } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { type CrateVersion, findVersion } from '../registry/index-entry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { UpstreamGuard } from '../upstream/failover.ts';
import type { HttpClient } from '../upstream/http-client.ts';
import { downloadAndStore, openPassThrough } from './crate-sources.ts';
import type { IndexCache } from './index-cache.ts';
import { LruMap } from './lru.ts';
import type { RegistryConfigService } from './registry-config-service.ts';
import { SingleFlight } from './single-flight.ts';
import type { NotStoredReason, StorageWriteGuard } from './storage-guard.ts';

/** What {@link CrateCache} needs. */
export interface CrateCacheDeps {
  store: BlobStore;
  index: IndexCache;
  registryConfig: RegistryConfigService;
  http: HttpClient;
  offline: boolean;
  maxCrateBytes: number;
  log: AppLogger;
  /** Retries, failover over `-u a,b` and circuit breakers. */
  guard?: UpstreamGuard;
  /** While storage takes no writes, crates are passed through (verified) instead of stored. */
  storageGuard?: StorageWriteGuard;
}

/** A crate ready to stream, with how it was obtained. */
export interface CrateLookup {
  /** The bytes; `size` is unknown only for a pass-through whose upstream sent no length. */
  blob: { stream: Readable; size: number | undefined };
  /** Hex sha256, when known without hashing (it is, for everything we stored). */
  checksum: string | undefined;
  outcome: 'hit' | 'miss';
  upstreamBytes: number;
  /** Set when the crate was passed through from upstream without being stored: why not. */
  notStored?: NotStoredReason;
}

/** The crate download cache. */
export class CrateCache {
  readonly #deps: CrateCacheDeps;
  readonly #flights = new SingleFlight<{ checksum: string; upstreamBytes: number }>();
  readonly #checksums = new LruMap<string, string>(200_000);

  constructor(deps: CrateCacheDeps) {
    this.#deps = deps;
  }

  /** Opens a crate, fetching it first when it is not cached. */
  async open(id: CrateId): Promise<CrateLookup> {
    const key = crateKey(id);
    const cached = await this.#deps.store.open(key);
    if (cached) {
      return {
        blob: cached,
        checksum: await this.#knownChecksum(id),
        outcome: 'hit',
        upstreamBytes: 0,
      };
    }
    if (this.#deps.offline) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${crateLabel(id)} is not cached and cargo-cacher runs with --offline`,
      );
    }
    if (this.#deps.storageGuard?.blocked) return this.#passThrough(id);
    let fetched: { checksum: string; upstreamBytes: number };
    // Only the request that started the download counts its bytes as fetched upstream; the
    // others joined it and cost upstream nothing.
    let ledTheFlight = false;
    try {
      fetched = await this.#flights.run(crateLabel(id), () => {
        ledTheFlight = true;
        return this.#fetch(id);
      });
    } catch (err) {
      // The body went into a write that storage refused (the store's caller told the guard, so
      // it blocks storing now): download it again, straight to the client.
      if (isCacherError(err, 'CARGO_CACHER_STORAGE') && this.#deps.storageGuard?.blocked) {
        return this.#passThrough(id);
      }
      throw err;
    }
    const blob = await this.#deps.store.open(key);
    if (!blob) throw Errors.CARGO_CACHER_STORAGE(`${crateLabel(id)} vanished from storage`);
    return {
      blob,
      checksum: fetched.checksum,
      outcome: 'miss',
      upstreamBytes: ledTheFlight ? fetched.upstreamBytes : 0,
    };
  }

  /** Downloads running now (single flights), for the in-flight gauge. */
  get inFlight(): number {
    return this.#flights.size;
  }

  /** True when the crate is stored (no upstream contact). */
  async has(id: CrateId): Promise<boolean> {
    return (await this.#deps.store.stat(crateKey(id))) !== undefined;
  }

  /**
   * Downloads and stores a crate, for prefetch and mirror jobs; shares the single flight with
   * client requests. `known` is the version's index line when the caller has read it already
   * (the mirror reads the git index), which saves an index lookup.
   */
  async fetch(
    id: CrateId,
    known?: CrateVersion,
  ): Promise<{ checksum: string; upstreamBytes: number }> {
    return this.#flights.run(crateLabel(id), () => this.#fetch(id, known));
  }

  async #fetch(
    id: CrateId,
    known?: CrateVersion,
  ): Promise<{ checksum: string; upstreamBytes: number }> {
    const entry = known ?? (await this.#findInIndex(id));
    // A caller whose storage miss came back after another flight stored the crate lands here.
    if (await this.has(id)) return { checksum: entry.checksum, upstreamBytes: 0 };
    // open() checks this before; prefetch and mirror jobs come straight here.
    if (this.#deps.offline) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${crateLabel(id)} is not cached and cargo-cacher runs with --offline`,
      );
    }
    // Other instances on a shared store may be fetching it too: the lease lets one of them do it.
    const lease = await this.#deps.store.lease(crateKey(id));
    try {
      if (lease.published) return { checksum: entry.checksum, upstreamBytes: 0 };
      const fetched = await downloadAndStore(this.#deps, id, entry);
      this.#checksums.set(crateKey(id), entry.checksum);
      return fetched;
    } finally {
      await lease.release();
    }
  }

  /** Serves a crate straight from upstream, verified on the way, without storing it. */
  async #passThrough(id: CrateId): Promise<CrateLookup> {
    const entry = await this.#findInIndex(id);
    const body = await openPassThrough(this.#deps, id, entry);
    return {
      blob: body,
      checksum: entry.checksum,
      outcome: 'miss',
      upstreamBytes: body.size ?? 0,
      notStored: this.#deps.storageGuard?.reason ?? 'storage not writable',
    };
  }

  /**
   * The index line of a version. A version missing from a fresh cached index may have been
   * published since, so the index is revalidated once before answering 404.
   */
  async #findInIndex(id: CrateId): Promise<CrateVersion> {
    const path = indexPath(id.name);
    let lookup = await this.#deps.index.get(path);
    let entry = lookup.found ? findVersion(lookup.file.body, id.version) : undefined;
    if (!entry && lookup.found && lookup.outcome === 'hit') {
      lookup = await this.#deps.index.get(path, { revalidate: true });
      entry = lookup.found ? findVersion(lookup.file.body, id.version) : undefined;
    }
    if (!entry) throw Errors.CARGO_CACHER_NOT_FOUND(`${crateLabel(id)} is not in the index`);
    return entry;
  }

  async #knownChecksum(id: CrateId): Promise<string | undefined> {
    const key = crateKey(id);
    const known = this.#checksums.get(key);
    if (known) return known;
    const file = await this.#deps.index.peek(indexPath(id.name));
    const checksum = file && findVersion(file.body, id.version)?.checksum;
    if (checksum) this.#checksums.set(key, checksum);
    return checksum;
  }
}
