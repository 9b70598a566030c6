/**
 * @module
 * Cache size and object counts, measured by listing the blob store. A listing walks the whole
 * cache, so it is done at most once per {@link CacheSizer} interval and shared by everyone who
 * asks meanwhile: the dashboard, the API and /metrics never walk the disk per request.
 */
import type { BlobStore } from '../storage/blob-store.ts';

/** Size of one area of the cache. */
export interface AreaSize {
  objects: number;
  bytes: number;
}

/** The measured cache. */
export interface CacheSize {
  crates: AreaSize;
  index: AreaSize;
  /** When the listing finished (ms since the epoch). */
  measuredAt: number;
}

/** The storage prefixes measured, as the caches name their keys. */
const AREAS = { crates: 'crates', index: 'index' } as const;

/** Measures the cache once, by listing it. */
export async function measureCache(
  store: BlobStore,
  now: () => number = Date.now,
): Promise<CacheSize> {
  const crates = await measureArea(store, AREAS.crates);
  const index = await measureArea(store, AREAS.index);
  return { crates, index, measuredAt: now() };
}

async function measureArea(store: BlobStore, prefix: string): Promise<AreaSize> {
  const size: AreaSize = { objects: 0, bytes: 0 };
  for await (const blob of store.list(prefix)) {
    size.objects += 1;
    size.bytes += blob.size;
  }
  return size;
}

/** Options of {@link CacheSizer}. */
export interface CacheSizerOptions {
  store: BlobStore;
  /** How long a measurement is served before the next listing; default 30 s. */
  maxAgeMs?: number;
  now?: () => number;
}

/**
 * Serves the last measurement, re-measuring in the background once it is older than `maxAgeMs`.
 * Only the very first call waits for a listing.
 */
export class CacheSizer {
  readonly #options: CacheSizerOptions;
  readonly #now: () => number;
  #last: CacheSize | undefined;
  #running: Promise<CacheSize> | undefined;

  constructor(options: CacheSizerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The latest measurement (waits only when there is none yet). */
  async get(): Promise<CacheSize> {
    const last = this.#last;
    if (last && this.#now() - last.measuredAt < (this.#options.maxAgeMs ?? 30_000)) return last;
    const running = this.#measure();
    if (last) {
      // A stale figure now is better than a slow answer; the next caller sees the new one.
      running.catch(() => undefined);
      return last;
    }
    return running;
  }

  /** The latest measurement without triggering one (for synchronous readers). */
  peek(): CacheSize | undefined {
    return this.#last;
  }

  #measure(): Promise<CacheSize> {
    this.#running ??= measureCache(this.#options.store, this.#now)
      .then((size) => {
        this.#last = size;
        return size;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }
}
