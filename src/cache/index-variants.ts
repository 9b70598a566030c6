/**
 * @module
 * Index files as they are sent: the hot-file check of the fast path and the routes (fresh in
 * memory, so answerable without a promise), and the gzip variant of each file, compressed once
 * per ETag and kept. HTTP concerns (which coding a client accepts, ETags, 304s) stay in
 * server/http-cache.ts; this module only says which bytes exist.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { crateNameFromIndexPath } from '../registry/crate-name.ts';
import type { IndexCache, IndexLookup, IndexOutcome } from './index-cache.ts';
import type { IndexFile } from './index-record.ts';
import { LruMap } from './lru.ts';

const gzipAsync = promisify(gzip);

/** Bodies smaller than this are sent as they are: gzip would not pay for its header. */
const MIN_GZIP_BYTES = 512;
/** Memory for gzip variants, bounded by bytes. */
const GZIP_BYTES = 32 * 1024 * 1024;

/** Gzips bodies once per ETag and keeps the result, bounded by bytes. */
export class GzipCache {
  readonly #entries = new LruMap<string, Buffer>(GZIP_BYTES, (body) => body.length);

  /** The gzip of `body`, or `undefined` when it is too small to be worth compressing. */
  async compress(etag: string, body: Buffer): Promise<Buffer | undefined> {
    const ready = this.ready(etag, body);
    if (ready !== undefined) return ready ?? undefined;
    const compressed = await gzipAsync(body);
    this.#entries.set(etag, compressed);
    return compressed;
  }

  /**
   * What {@link compress} would give without doing any work: the kept gzip, `null` when the
   * body is too small to compress, `undefined` when it has not been compressed yet.
   */
  ready(etag: string, body: Buffer): Buffer | null | undefined {
    if (body.length < MIN_GZIP_BYTES) return null;
    return this.#entries.get(etag);
  }
}

/**
 * What a served index file looks like under a view of it: the supply-chain policy
 * (`policy-view.ts`), the index of what is held (`held-view.ts`).
 */
export interface IndexView {
  /** The file as served, or `undefined` when it is not served at all (a 404). */
  serve(path: string, file: IndexFile, outcome: IndexOutcome): IndexFile | undefined;
}

/** The views applied one after the other; `undefined` when there are none. */
export function chainViews(views: readonly (IndexView | undefined)[]): IndexView | undefined {
  const present = views.filter((view): view is IndexView => view !== undefined);
  if (present.length <= 1) return present[0];
  return {
    serve(path, file, outcome) {
      let served: IndexFile | undefined = file;
      for (const view of present) {
        served = view.serve(path, served, outcome);
        if (served === undefined) return undefined;
      }
      return served;
    },
  };
}

/** The index cache and the gzip variants of what it serves. */
export class IndexVariants {
  readonly #index: Pick<IndexCache, 'hot' | 'get'>;
  readonly #gzip: GzipCache;
  readonly #view: IndexView | undefined;

  constructor(index: Pick<IndexCache, 'hot' | 'get'>, gzip = new GzipCache(), view?: IndexView) {
    this.#index = index;
    this.#gzip = gzip;
    this.#view = view;
  }

  /**
   * A crate's index file that can be served as it is right now (fresh in memory, or upstream
   * out of reach), or `undefined`. `config.json` never is: it is held in the same memory but
   * served rewritten by its own route.
   */
  hotFile(path: string): IndexFile | undefined {
    if (crateNameFromIndexPath(path) === undefined) return undefined;
    const hot = this.#index.hot(path);
    return hot && this.#view ? this.#view.serve(path, hot, 'hit') : hot;
  }

  /**
   * The index file at a crate's index path: the hot copy at once (no promise, so no extra
   * turn of the event loop), else whatever the cache finds (storage, upstream).
   */
  lookup(path: string): IndexLookup | Promise<IndexLookup> {
    const hot = this.#index.hot(path);
    if (hot)
      return this.#servedLookup(path, { found: true, file: hot, outcome: 'hit', upstreamBytes: 0 });
    const looked = this.#index.get(path);
    return this.#view ? looked.then((lookup) => this.#servedLookup(path, lookup)) : looked;
  }

  #servedLookup(path: string, lookup: IndexLookup): IndexLookup {
    if (!lookup.found || !this.#view) return lookup;
    const file = this.#view.serve(path, lookup.file, lookup.outcome);
    return file ? { ...lookup, file } : { found: false };
  }

  /** The gzip variant if ready now: `null` when too small, `undefined` when not compressed yet. */
  readyGzip(file: IndexFile): Buffer | null | undefined {
    return this.#gzip.ready(file.etag, file.body);
  }

  /** The gzip variant, compressed now if needed; `undefined` when too small to be worth it. */
  gzipOf(file: IndexFile): Promise<Buffer | undefined> {
    return this.#gzip.compress(file.etag, file.body);
  }
}
