/**
 * @module
 * The registry API through the cache: searches and crate metadata answered from upstream's API,
 * kept, and served again without asking it while fresh, revalidated after their TTL
 * (conditionally when upstream gave validators), and served stale when upstream fails, is
 * rate-limited past its queue, or is out of reach (`--offline`). Metadata is kept in memory and
 * in storage under `api/` (it survives restarts); searches only in memory, briefly.
 */
import { type CacherError, Errors, isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import {
  type ApiRequest,
  cacheKeyOf,
  describeApiRequest,
  storageKeyOf,
} from '../registry/api-request.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { ApiFetch, CratesApiUpstream } from '../upstream/crates-api.ts';
import {
  createIndexFile,
  decodeIndexRecord,
  encodeIndexRecord,
  type IndexFile,
} from './index-record.ts';
import { LruMap } from './lru.ts';
import { SingleFlight } from './single-flight.ts';
import type { StorageWriteGuard } from './storage-guard.ts';

/** How an answer was obtained, for `X-Cache-Status`, logs and statistics. */
export type ApiOutcome = 'hit' | 'miss' | 'revalidated' | 'stale' | 'not-found';

/** An answer of the registry API: upstream's bytes and status, and how they were obtained. */
export interface ApiAnswer {
  status: 200 | 404;
  /** Upstream's body (our record keeps ETag and Last-Modified of its own). */
  file: IndexFile;
  outcome: ApiOutcome;
  /** Bytes fetched from upstream for this answer. */
  upstreamBytes: number;
}

/** How long answers are trusted before upstream is asked again. */
export interface ApiTtls {
  /** Searches: a few minutes (new crates show up after it). */
  searchMs: number;
  /** Crate metadata: new versions, yanks and download counts show up after it. */
  metadataMs: number;
  /** A 404 (no such crate), so typos are not asked twice a second. */
  notFoundMs: number;
}

/** The default freshness: five minutes for answers, one for "no such crate". */
export const DEFAULT_API_TTLS: ApiTtls = {
  searchMs: 5 * 60_000,
  metadataMs: 5 * 60_000,
  notFoundMs: 60_000,
};

/** What {@link ApiCache} needs. */
export interface ApiCacheDeps {
  store: BlobStore;
  /** Upstream's API; `undefined` with `--offline` (answers come from the cache only). */
  upstream: CratesApiUpstream | undefined;
  log: AppLogger;
  ttls?: Partial<ApiTtls>;
  /** Answers kept in memory, in bytes (default 32 MB). */
  memoryBytes?: number;
  storageGuard?: StorageWriteGuard;
  now?: () => number;
}

interface Entry {
  status: 200 | 404;
  file: IndexFile;
}

/** The registry API cache. */
export class ApiCache {
  readonly #deps: ApiCacheDeps;
  readonly #ttls: ApiTtls;
  readonly #now: () => number;
  readonly #memory: LruMap<string, Entry>;
  readonly #flights = new SingleFlight<ApiAnswer>();

  constructor(deps: ApiCacheDeps) {
    this.#deps = deps;
    this.#ttls = { ...DEFAULT_API_TTLS, ...deps.ttls };
    this.#now = deps.now ?? Date.now;
    this.#memory = new LruMap(
      deps.memoryBytes ?? 32 * 1024 * 1024,
      (e) => e.file.body.length + 256,
    );
  }

  /** Answers `request`: see the module comment. */
  async get(request: ApiRequest): Promise<ApiAnswer> {
    const key = cacheKeyOf(request);
    const cached = await this.#peek(request, key);
    const upstream = this.#deps.upstream;
    if (cached && (this.#isFresh(request, cached) || !upstream)) return answer(cached, 'hit', 0);
    if (!upstream) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${describeApiRequest(request)} is not cached, and this cache is offline`,
      );
    }
    return this.#flights.run(key, () => this.#refresh(upstream, request, key, cached));
  }

  /** Upstream API requests running now (single flights). */
  get inFlight(): number {
    return this.#flights.size;
  }

  async #peek(request: ApiRequest, key: string): Promise<Entry | undefined> {
    const remembered = this.#memory.get(key);
    if (remembered) return remembered;
    const storageKey = storageKeyOf(request);
    if (storageKey === undefined) return undefined;
    const record = await this.#deps.store.read(storageKey);
    const file = record && decodeIndexRecord(record);
    if (!file) return undefined;
    const entry: Entry = { status: 200, file };
    this.#memory.set(key, entry);
    return entry;
  }

  #isFresh(request: ApiRequest, entry: Entry): boolean {
    const ttl =
      entry.status === 404
        ? this.#ttls.notFoundMs
        : request.kind === 'search'
          ? this.#ttls.searchMs
          : this.#ttls.metadataMs;
    return this.#now() - entry.file.checkedAt < ttl;
  }

  async #refresh(
    upstream: CratesApiUpstream,
    request: ApiRequest,
    key: string,
    cached: Entry | undefined,
  ): Promise<ApiAnswer> {
    let fetched: ApiFetch;
    try {
      // A cached 404 has no validators worth sending: ask afresh.
      fetched = await upstream.fetch(request, cached?.status === 200 ? cached.file.upstream : {});
    } catch (err) {
      return this.#onUpstreamError(request, cached, err);
    }
    switch (fetched.kind) {
      case 'not-modified':
        if (cached?.status !== 200) {
          const error = Errors.CARGO_CACHER_UPSTREAM_INVALID(
            `upstream API answered 304 for ${describeApiRequest(request)} without a cached copy`,
          );
          return this.#onUpstreamError(request, cached, error);
        }
        return this.#save(request, key, { ...cached.file, checkedAt: this.#now() }, 'revalidated');
      case 'modified': {
        const file = createIndexFile(fetched.body, fetched.validators, this.#now());
        const outcome = cached ? 'revalidated' : 'miss';
        const saved = await this.#save(request, key, file, outcome);
        return { ...saved, upstreamBytes: fetched.body.length };
      }
      case 'not-found':
        return this.#notFound(request, key, fetched.body);
    }
  }

  async #save(
    request: ApiRequest,
    key: string,
    file: IndexFile,
    outcome: ApiOutcome,
  ): Promise<ApiAnswer> {
    const entry: Entry = { status: 200, file };
    this.#memory.set(key, entry);
    const storageKey = storageKeyOf(request);
    if (storageKey !== undefined) {
      try {
        await this.#deps.store.put(storageKey, encodeIndexRecord(file));
      } catch (err) {
        // Served from memory meanwhile; the next revalidation tries to store it again.
        if (!this.#deps.storageGuard?.report(err, storageKey)) {
          this.#deps.log.warn({ err, key: storageKey }, 'could not store a registry API answer');
        }
      }
    }
    return answer(entry, outcome, 0);
  }

  /** Upstream says there is no such crate (or version): remembered briefly, in memory only. */
  async #notFound(request: ApiRequest, key: string, body: Buffer): Promise<ApiAnswer> {
    const entry: Entry = { status: 404, file: createIndexFile(body, {}, this.#now()) };
    this.#memory.set(key, entry);
    const storageKey = storageKeyOf(request);
    // A crate deleted upstream is forgotten here too; a store that refuses keeps a copy that
    // is never served while the 404 is remembered, and is tried again after it.
    if (storageKey !== undefined) {
      await this.#deps.store.delete(storageKey).catch((err: unknown) => {
        this.#deps.log.warn({ err, key: storageKey }, 'could not delete a registry API answer');
      });
    }
    return answer(entry, 'not-found', body.length);
  }

  #onUpstreamError(request: ApiRequest, cached: Entry | undefined, err: unknown): ApiAnswer {
    const error = asCacherError(err);
    if (!cached) throw error;
    this.#deps.log.warn(
      { code: error.code },
      `serving stale ${describeApiRequest(request)}: ${error.message}`,
    );
    return answer(cached, 'stale', 0);
  }
}

function answer(entry: Entry, outcome: ApiOutcome, upstreamBytes: number): ApiAnswer {
  const shown = entry.status === 404 && outcome !== 'stale' ? 'not-found' : outcome;
  return { status: entry.status, file: entry.file, outcome: shown, upstreamBytes };
}

function asCacherError(err: unknown): CacherError {
  if (isCacherError(err)) return err;
  return Errors.CARGO_CACHER_UPSTREAM_INVALID(`upstream API failed: ${(err as Error).message}`, {
    cause: err,
  });
}
