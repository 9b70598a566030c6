/**
 * @module
 * Talking to an upstream sparse index: conditional GETs of index files and `config.json`.
 */
import { Errors } from '../errors.ts';
import { discardBody, type HttpClient, headerValue, readBody } from './http-client.ts';

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

/** The largest index file accepted; crates.io's largest are a few MB. */
const MAX_INDEX_FILE_BYTES = 64 * 1024 * 1024;

/** An upstream sparse index at `baseUrl` (ends with `/`). */
export class SparseUpstream {
  readonly baseUrl: string;
  readonly #http: HttpClient;

  constructor(http: HttpClient, baseUrl: string) {
    this.#http = http;
    this.baseUrl = baseUrl;
  }

  /**
   * Fetches `path` (relative to the index root) with the stored validators. cargo's own rule:
   * "If the cached copy has an ETag, cargo sends If-None-Match ... otherwise If-Modified-Since".
   */
  async fetch(path: string, validators: Validators = {}): Promise<IndexFetch> {
    const url = this.baseUrl + path;
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
      throw Errors.CARGO_CACHER_UPSTREAM_STATUS(
        `upstream index answered ${response.status} for ${path}`,
      );
    }
    const body = await readBody(url, response.body, MAX_INDEX_FILE_BYTES);
    const etag = headerValue(response.headers, 'etag');
    const lastModified = headerValue(response.headers, 'last-modified');
    return {
      kind: 'modified',
      body,
      validators: { ...(etag && { etag }), ...(lastModified && { lastModified }) },
    };
  }
}
