/**
 * @module
 * The one error catalogue. Every error cargo-cacher raises on purpose has a stable code
 * (`CARGO_CACHER_*`, documented in docs/ERRORS.md), an HTTP status for when it reaches a client,
 * and keeps what caused it in `cause` (undici's `UND_ERR_*` codes stay visible there).
 */

/** Base class: a message, a stable code, an HTTP status. */
export class CacherError extends Error {
  readonly code: string;
  readonly statusCode: number;
  /** Seconds a client should wait before retrying, sent as `Retry-After`. */
  readonly retryAfter?: number;
  /** The upstream status behind an `UPSTREAM_STATUS` error. */
  readonly upstreamStatus?: number;

  constructor(code: string, statusCode: number, message: string, options?: CacherErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CacherError';
    this.code = code;
    this.statusCode = statusCode;
    if (options?.retryAfter !== undefined) this.retryAfter = options.retryAfter;
    if (options?.upstreamStatus !== undefined) this.upstreamStatus = options.upstreamStatus;
  }
}

/** What an error may carry besides its message. */
export interface CacherErrorOptions {
  cause?: unknown;
  retryAfter?: number;
  /** The status upstream answered, when the error is about one (retry decisions read it). */
  upstreamStatus?: number;
}

type ErrorFactory = (message: string, options?: CacherErrorOptions) => CacherError;

function define(code: string, statusCode: number): ErrorFactory & { code: string } {
  const factory = (message: string, options?: CacherErrorOptions) =>
    new CacherError(code, statusCode, message, options);
  return Object.assign(factory, { code });
}

/** Every error code, keyed by itself. A unit test holds each key equal to its code. */
export const Errors = {
  /** A flag or setting has a value that cannot work. */
  CARGO_CACHER_INVALID_CONFIG: define('CARGO_CACHER_INVALID_CONFIG', 500),
  /** A request names something that cannot exist (bad crate name, version, path). */
  CARGO_CACHER_BAD_REQUEST: define('CARGO_CACHER_BAD_REQUEST', 400),
  /** The crate, version or index file does not exist (cargo needs 404, never 410). */
  CARGO_CACHER_NOT_FOUND: define('CARGO_CACHER_NOT_FOUND', 404),
  /** The request is understood but not allowed (pushing to the index). */
  CARGO_CACHER_FORBIDDEN: define('CARGO_CACHER_FORBIDDEN', 403),
  /** Offline and not cached. */
  CARGO_CACHER_NOT_CACHED_OFFLINE: define('CARGO_CACHER_NOT_CACHED_OFFLINE', 404),
  /** Upstream answered with an unexpected status. */
  CARGO_CACHER_UPSTREAM_STATUS: define('CARGO_CACHER_UPSTREAM_STATUS', 502),
  /** Upstream could not be reached or timed out. */
  CARGO_CACHER_UPSTREAM_UNREACHABLE: define('CARGO_CACHER_UPSTREAM_UNREACHABLE', 503),
  /** Upstream sent something malformed (config.json, a truncated body). */
  CARGO_CACHER_UPSTREAM_INVALID: define('CARGO_CACHER_UPSTREAM_INVALID', 502),
  /** A downloaded crate's sha256 differs from the index checksum. Never stored. */
  CARGO_CACHER_CHECKSUM_MISMATCH: define('CARGO_CACHER_CHECKSUM_MISMATCH', 502),
  /** The git index is not ready yet (first clone still running). */
  CARGO_CACHER_GIT_NOT_READY: define('CARGO_CACHER_GIT_NOT_READY', 503),
  /** The git index is switched off. */
  CARGO_CACHER_GIT_DISABLED: define('CARGO_CACHER_GIT_DISABLED', 404),
  /** A request body is larger than the route accepts. */
  CARGO_CACHER_BODY_TOO_LARGE: define('CARGO_CACHER_BODY_TOO_LARGE', 413),
  /** Writing to storage failed. */
  CARGO_CACHER_STORAGE: define('CARGO_CACHER_STORAGE', 500),
  /** Upstream did not connect, answer or finish its body within the configured timeout. */
  CARGO_CACHER_UPSTREAM_TIMEOUT: define('CARGO_CACHER_UPSTREAM_TIMEOUT', 504),
  /** Every upstream failed recently: requests fail fast until a probe succeeds. */
  CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN: define('CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN', 503),
  /** Access control is on and the request has no valid token. */
  CARGO_CACHER_UNAUTHORIZED: define('CARGO_CACHER_UNAUTHORIZED', 401),
  /** The supply-chain policy withholds this version (denied, or younger than the cooldown). */
  CARGO_CACHER_POLICY: define('CARGO_CACHER_POLICY', 403),
  /** A registry write (publish, yank, owners): this is a cache, not a registry. */
  CARGO_CACHER_NOT_A_REGISTRY: define('CARGO_CACHER_NOT_A_REGISTRY', 405),
  /** Too many registry API requests are waiting for upstream's rate limit; retry shortly. */
  CARGO_CACHER_RATE_LIMITED: define('CARGO_CACHER_RATE_LIMITED', 429),
} as const;

export type ErrorCode = keyof typeof Errors;

/** True when `err` is a {@link CacherError}, optionally with the given code. */
export function isCacherError(err: unknown, code?: ErrorCode): err is CacherError {
  return err instanceof CacherError && (code === undefined || err.code === code);
}
