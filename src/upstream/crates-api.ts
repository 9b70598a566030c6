/**
 * @module
 * Talking to upstream's registry web API (crates.io: `https://crates.io/api/v1/…`), the root
 * named by `api` in upstream's `config.json`. Only the requests of `registry/api-request.ts`
 * are ever sent, each through the API's {@link RateLimiter} (crates.io allows 1 request per
 * second) and with the HTTP client's identifying User-Agent, which crates.io requires. One try
 * per request: the limit makes retries expensive, and cargo retries a 5xx or 429 itself.
 */
import { Errors } from '../errors.ts';
import { type ApiRequest, describeApiRequest, upstreamPathOf } from '../registry/api-request.ts';
import { parseRetryAfter } from './failover.ts';
import {
  discardBody,
  type HttpClient,
  headerValue,
  readBody,
  upstreamFailure,
} from './http-client.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { Validators } from './sparse-index.ts';

/** What upstream's API answered. */
export type ApiFetch =
  | { kind: 'modified'; body: Buffer; validators: Validators }
  | { kind: 'not-modified' }
  /** crates.io's 404 carries its own explanation (`crate \`x\` does not exist`), kept. */
  | { kind: 'not-found'; body: Buffer };

/** What {@link CratesApiUpstream} needs. */
export interface CratesApiOptions {
  http: HttpClient;
  /** Upstream's API root (`config.json`'s `api`), or `undefined` when upstream has none. */
  apiRoot: () => Promise<string | undefined>;
  limiter: RateLimiter;
}

/** The largest API answer accepted: the metadata of crates with thousands of versions. */
const MAX_API_BODY_BYTES = 32 * 1024 * 1024;
/** A 404's explanation is a line of JSON. */
const MAX_NOT_FOUND_BYTES = 64 * 1024;

/** Upstream's registry API. */
export class CratesApiUpstream {
  readonly #options: CratesApiOptions;

  constructor(options: CratesApiOptions) {
    this.#options = options;
  }

  /** Asks upstream for `request`, conditionally when validators of a cached copy are given. */
  async fetch(request: ApiRequest, validators: Validators = {}): Promise<ApiFetch> {
    const url = apiUrl(await this.#root(), request);
    await this.#options.limiter.take();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (validators.etag) headers['if-none-match'] = validators.etag;
    else if (validators.lastModified) headers['if-modified-since'] = validators.lastModified;
    const response = await this.#options.http.get(url, headers);
    const describe = this.#options.http.describeFailure ?? upstreamFailure;
    switch (response.status) {
      case 200: {
        const body = await readBody(url, response.body, MAX_API_BODY_BYTES, describe);
        return { kind: 'modified', body, validators: validatorsOf(response.headers) };
      }
      case 304:
        await discardBody(response.body);
        return { kind: 'not-modified' };
      case 404:
        return { kind: 'not-found', body: await readBody(url, response.body, MAX_NOT_FOUND_BYTES) };
    }
    await discardBody(response.body);
    const retryAfter = parseRetryAfter(headerValue(response.headers, 'retry-after'));
    throw Errors.CARGO_CACHER_UPSTREAM_STATUS(
      `upstream API ${new URL(url).host} answered ${response.status} for ${describeApiRequest(request)}`,
      { upstreamStatus: response.status, ...(retryAfter !== undefined && { retryAfter }) },
    );
  }

  async #root(): Promise<string> {
    const root = await this.#options.apiRoot();
    if (root === undefined) {
      throw Errors.CARGO_CACHER_NOT_FOUND(
        "the upstream registry has no API (its config.json names no 'api')",
      );
    }
    return root;
  }
}

/**
 * The URL of `request` below the API root. The path comes only from a checked request, and the
 * result is held to the root's origin and path, so no client input can reach another host.
 */
export function apiUrl(root: string, request: ApiRequest): string {
  let base: URL;
  try {
    base = new URL(root);
  } catch (cause) {
    throw Errors.CARGO_CACHER_UPSTREAM_INVALID(`upstream config.json's api is not a URL: ${root}`, {
      cause,
    });
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
      `upstream config.json's api is not http(s): ${root}`,
    );
  }
  const prefix = base.href.replace(/\/+$/, '');
  const url = new URL(prefix + upstreamPathOf(request));
  if (url.origin !== base.origin || !url.href.startsWith(`${prefix}/api/v1/crates`)) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`refusing to send ${describeApiRequest(request)}`);
  }
  return url.href;
}

function validatorsOf(headers: Parameters<typeof headerValue>[0]): Validators {
  const etag = headerValue(headers, 'etag');
  const lastModified = headerValue(headers, 'last-modified');
  return { ...(etag && { etag }), ...(lastModified && { lastModified }) };
}
