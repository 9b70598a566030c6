/**
 * @module
 * Talking to an upstream sparse index: conditional GETs of index files and `config.json`, on
 * one or more equivalent upstreams (`-s a,b`), with retries and failover.
 */
import { Errors } from '../errors.ts';
import { parseRetryAfter, type UpstreamGuard } from './failover.ts';
import {
  discardBody,
  type HttpClient,
  headerValue,
  readBody,
  upstreamFailure,
} from './http-client.ts';

/** Validators remembered from an earlier 200, sent back verbatim (weak ETags included). */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

/** The outcome of a conditional fetch. */
export type IndexFetch =
  | { kind: 'modified'; body: Buffer; validators: Validators }
  | { kind: 'not-modified' }
  | { kind: 'not-found' };

/** How a fetch may be run. */
export interface FetchOptions {
  /**
   * A cached copy can be served if this fails: each upstream is tried once, without retry
   * rounds, so cargo gets the stale copy at once rather than after the backoff.
   */
  staleAvailable?: boolean;
}

/** The largest index file accepted; crates.io's largest are a few MB. */
const MAX_INDEX_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Upstream sparse indexes at `baseUrls` (each ends with `/`), equivalent copies tried in order.
 * Validators are sent to whichever answers: a copy that does not know them answers 200.
 */
export class SparseUpstream {
  #baseUrls: readonly string[];
  readonly #http: HttpClient;
  readonly #guard: UpstreamGuard | undefined;

  constructor(http: HttpClient, baseUrls: string | readonly string[], guard?: UpstreamGuard) {
    this.#http = http;
    this.#baseUrls = typeof baseUrls === 'string' ? [baseUrls] : baseUrls;
    this.#guard = guard;
  }

  get baseUrls(): readonly string[] {
    return this.#baseUrls;
  }

  /** Fetches from now on go to `baseUrls` (a reload changed `-s`); those under way finish. */
  setBaseUrls(baseUrls: readonly string[]): void {
    this.#baseUrls = baseUrls;
  }

  /**
   * Fetches `path` (relative to the index root) with the stored validators. cargo's own rule:
   * "If the cached copy has an ETag, cargo sends If-None-Match ... otherwise If-Modified-Since".
   */
  async fetch(
    path: string,
    validators: Validators = {},
    options: FetchOptions = {},
  ): Promise<IndexFetch> {
    const urls = this.baseUrls.map((base) => base + path);
    if (!this.#guard) return this.#fetchOne(urls[0] as string, path, validators);
    const attempts = options.staleAvailable ? { attempts: 1 } : {};
    return this.#guard.run(urls, (url) => this.#fetchOne(url, path, validators), attempts);
  }

  async #fetchOne(url: string, path: string, validators: Validators): Promise<IndexFetch> {
    const headers: Record<string, string> = {};
    if (validators.etag) headers['if-none-match'] = validators.etag;
    else if (validators.lastModified) headers['if-modified-since'] = validators.lastModified;
    const response = await this.#http.get(url, headers);
    if (response.status === 304) {
      await discardBody(response.body);
      return { kind: 'not-modified' };
    }
    // crates.io's S3 answers 404 for unknown keys; 410/451 mean the same to older cargo.
    if (response.status === 404 || response.status === 410 || response.status === 451) {
      await discardBody(response.body);
      return { kind: 'not-found' };
    }
    if (response.status !== 200) {
      await discardBody(response.body);
      const retryAfter = parseRetryAfter(headerValue(response.headers, 'retry-after'));
      throw Errors.CARGO_CACHER_UPSTREAM_STATUS(
        `upstream index ${new URL(url).host} answered ${response.status} for ${path}`,
        { upstreamStatus: response.status, ...(retryAfter !== undefined && { retryAfter }) },
      );
    }
    const describe = this.#http.describeFailure ?? upstreamFailure;
    const body = await readBody(url, response.body, MAX_INDEX_FILE_BYTES, describe);
    const etag = headerValue(response.headers, 'etag');
    const lastModified = headerValue(response.headers, 'last-modified');
    return {
      kind: 'modified',
      body,
      validators: { ...(etag && { etag }), ...(lastModified && { lastModified }) },
    };
  }
}
