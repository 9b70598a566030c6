/**
 * @module
 * rustup's dist server upstream (`--rustup-upstream`, default `https://static.rust-lang.org`):
 * GETs of dist paths through the one HTTP client, with the same retries, failover and circuit
 * breaker as every other upstream request ({@link UpstreamGuard}). Only a 200 is a file; a 404 is
 * upstream's answer (`CARGO_CACHER_NOT_FOUND`), anything else an upstream error.
 */
import type { Readable } from 'node:stream';
import { Errors, isCacherError } from '../errors.ts';
import type { UpstreamGuard } from './failover.ts';
import { parseRetryAfter } from './failover.ts';
import { discardBody, type HttpClient, headerValue, readBody } from './http-client.ts';

/** An upstream body being received. */
export interface UpstreamFile {
  body: Readable;
  /** Upstream's Content-Length, when it sent one. */
  size: number | undefined;
}

/** Options of one request. */
export interface FetchOptions {
  /** Fewer request rounds (1 when a stale copy can be served instead). */
  attempts?: number;
}

/** Fetches files from the rustup dist upstream. */
export class RustupUpstream {
  readonly #http: HttpClient;
  readonly #base: string;
  readonly #guard: UpstreamGuard | undefined;

  constructor(http: HttpClient, baseUrl: string, guard?: UpstreamGuard) {
    this.#http = http;
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#guard = guard;
  }

  /** The upstream URL of a dist path. */
  urlOf(path: string): string {
    return `${this.#base}/${path}`;
  }

  /** The upstream host and path, for `/health` and logs. */
  get base(): string {
    return this.#base;
  }

  /** Opens `path`; the caller consumes or destroys the body. */
  async open(path: string, options: FetchOptions = {}): Promise<UpstreamFile> {
    const task = (url: string) => this.#openOnce(url);
    const url = this.urlOf(path);
    try {
      if (!this.#guard) return await task(url);
      return await this.#guard.run([url], task, options);
    } catch (err) {
      throw asNotFound(err, path);
    }
  }

  /** Reads a small file (a manifest, a sidecar) whole; larger than `maxBytes` is an error. */
  async read(path: string, maxBytes: number, options: FetchOptions = {}): Promise<Buffer> {
    const task = async (url: string) => {
      const file = await this.#openOnce(url);
      return readBody(url, file.body, maxBytes, this.#http.describeFailure);
    };
    const url = this.urlOf(path);
    try {
      if (!this.#guard) return await task(url);
      return await this.#guard.run([url], task, options);
    } catch (err) {
      throw asNotFound(err, path);
    }
  }

  async #openOnce(url: string): Promise<UpstreamFile> {
    const response = await this.#http.get(url, { accept: '*/*' });
    if (response.status !== 200) {
      await discardBody(response.body);
      const { status } = response;
      const retryAfter =
        status === 429 || status === 503
          ? (parseRetryAfter(headerValue(response.headers, 'retry-after')) ?? 5)
          : undefined;
      throw Errors.CARGO_CACHER_UPSTREAM_STATUS(`upstream answered ${status} for ${url}`, {
        upstreamStatus: status,
        ...(retryAfter !== undefined && { retryAfter }),
      });
    }
    const length = Number(headerValue(response.headers, 'content-length'));
    return {
      body: response.body,
      size: Number.isSafeInteger(length) && length >= 0 ? length : undefined,
    };
  }
}

/** True when the error is upstream saying the file does not exist. */
export function isUpstreamNotFound(err: unknown): boolean {
  return isCacherError(err, 'CARGO_CACHER_NOT_FOUND');
}

/** A 404 (or 410) from upstream is its answer: the file does not exist. */
function asNotFound(err: unknown, path: string): unknown {
  if (!isCacherError(err, 'CARGO_CACHER_UPSTREAM_STATUS')) return err;
  const status = err.upstreamStatus;
  if (status !== 404 && status !== 410) return err;
  return Errors.CARGO_CACHER_NOT_FOUND(`${path} does not exist upstream`, { cause: err });
}
