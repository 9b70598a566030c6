/**
 * @module
 * Storage that will not take writes, noticed and survived. When a write to storage fails (a full
 * disk, ENOSPC or EDQUOT; or permissions, a read-only mount, an I/O error, a refused object
 * storage put), the crate cache stops trying to store for a minute and passes downloads through
 * to clients instead (verified, see {@link createVerifyingStream}); then one store is tried
 * again, and its success ends the episode. The condition is logged once per minute, not per
 * request, and /health reports it.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';

/** How long storing is not even tried after a failed write, and the log interval. */
export const STORAGE_RETRY_MS = 60_000;

/** Out of space: the operator frees some. */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Errno codes of a network, not a disk: an upstream body that broke off inside a store's
 * pipeline fails with these (or with undici's `UND_ERR_*`), and storage is not to blame.
 */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'ENOTCONN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EPROTO',
  'EADDRINUSE',
  'EADDRNOTAVAIL',
]);

/** An errno name (`EACCES`, `EAI_AGAIN`), not one of Node's own `ERR_*` codes. */
const ERRNO = /^E(?!RR_)[A-Z0-9_]+$/;

/** Why a crate was served without being stored: the `X-Cargo-Cacher-Not-Stored` value. */
export type NotStoredReason = 'storage full' | 'storage not writable';

/** A storage write that failed, as {@link classifyWriteFailure} reads it. */
export interface WriteFailure {
  /** `full`: out of space; `unwritable`: anything else the storage refused. */
  kind: 'full' | 'unwritable';
  /** The errno (`EACCES`), or object storage's error name (`AccessDenied`). */
  code: string;
  /** The file the operating system named, when it named one. */
  path?: string;
}

/** What /health says of storage writes (the shape `AppServices.storageHealth` returns). */
export interface StorageHealth {
  writable: boolean;
  problem?: string;
}

type ErrorLike = { code?: unknown; cause?: unknown; name?: unknown; path?: unknown } | undefined;

/**
 * Reads an error raised by a storage write: a {@link WriteFailure} when storage refused it,
 * `undefined` when something else failed (the upstream body broke off, a checksum mismatch, a
 * body over the size limit). An errno anywhere in the `cause` chain counts, unless it is a
 * network's; a `CARGO_CACHER_STORAGE` error (object storage wraps every failed call in one)
 * counts whatever it wraps, except a failure of undici, which only the upstream body uses.
 */
export function classifyWriteFailure(err: unknown): WriteFailure | undefined {
  let storage: ErrorLike;
  for (let e = err as ErrorLike, depth = 0; e && depth < 5; depth++) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    if (code && FULL_CODES.has(code)) return failure('full', code, e);
    if (code?.startsWith('UND_ERR_')) return undefined;
    if (code && ERRNO.test(code) && (storage || !NETWORK_CODES.has(code))) {
      return failure('unwritable', code, e);
    }
    if (code === Errors.CARGO_CACHER_STORAGE.code) storage = e;
    else if (code?.startsWith('CARGO_CACHER_') || code?.startsWith('ERR_')) return undefined;
    e = e.cause as ErrorLike;
  }
  if (!storage) return undefined;
  // Object storage: the SDK's error name says what was refused (AccessDenied, NoSuchBucket).
  const sdkName = (storage.cause as ErrorLike)?.name;
  const named = typeof sdkName === 'string' && sdkName !== 'Error' ? sdkName : undefined;
  return { kind: 'unwritable', code: named ?? Errors.CARGO_CACHER_STORAGE.code };
}

function failure(kind: WriteFailure['kind'], code: string, e: NonNullable<ErrorLike>) {
  const found: WriteFailure = { kind, code };
  if (typeof e.path === 'string') found.path = e.path;
  return found;
}

/** The last failed write of an episode, with the storage key it was for. */
interface Episode extends WriteFailure {
  key: string;
  /** Storing is not tried again before this time. */
  until: number;
}

/**
 * Tracks whether storage takes writes, and says so in the log once per minute. Crate stores
 * end an episode; index files report failures but do not end one (their directory may be
 * writable while `crates/` is not).
 */
export class StorageWriteGuard {
  readonly #log: AppLogger;
  readonly #now: () => number;
  #episode: Episode | undefined;
  #lastLogAt = Number.NEGATIVE_INFINITY;
  #passedThrough = 0;

  constructor(log: AppLogger, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
  }

  /** True while storing should not be tried (a write failed less than a minute ago). */
  get blocked(): boolean {
    return this.#episode !== undefined && this.#now() < this.#episode.until;
  }

  /** True once a write failed and no crate store has succeeded since. */
  get episode(): boolean {
    return this.#episode !== undefined;
  }

  /** What a crate passed through now is marked with, during an episode. */
  get reason(): NotStoredReason | undefined {
    if (!this.#episode) return undefined;
    return this.#episode.kind === 'full' ? 'storage full' : 'storage not writable';
  }

  /**
   * Reports a failed write of `key`. Returns the failure (and handles the log) when storage
   * refused it; `undefined` when the failure was not storage's, which changes nothing.
   */
  report(err: unknown, key: string): WriteFailure | undefined {
    const failure = classifyWriteFailure(err);
    if (!failure) return undefined;
    const now = this.#now();
    this.#episode = { ...failure, key, until: now + STORAGE_RETRY_MS };
    this.#maybeLog(now);
    return failure;
  }

  /** Counts a crate served without being stored. */
  passedThrough(): void {
    this.#passedThrough += 1;
    this.#maybeLog(this.#now());
  }

  /** A crate store succeeded: whatever refused writes before, storage takes them again. */
  stored(): void {
    const episode = this.#episode;
    if (!episode) return;
    this.#episode = undefined;
    this.#lastLogAt = Number.NEGATIVE_INFINITY;
    this.#log.notice(
      episode.kind === 'full'
        ? 'storage has space again: caching downloads again'
        : 'storage takes writes again: caching downloads again',
    );
  }

  /** For /health: not writable from a failed write until a crate store succeeds. */
  health(): StorageHealth {
    const episode = this.#episode;
    if (!episode) return { writable: true };
    return { writable: false, problem: `${describe(episode)}: ${detail(episode)}` };
  }

  #maybeLog(now: number): void {
    const episode = this.#episode;
    if (!episode || now - this.#lastLogAt < STORAGE_RETRY_MS) return;
    this.#lastLogAt = now;
    const remedy =
      episode.kind === 'full'
        ? 'free space under the storage root'
        : 'check the permissions, mount and health of the storage (or the bucket and its policy)';
    this.#log.error(
      {
        code: episode.code,
        key: episode.key,
        ...(episode.path && { path: episode.path }),
        passedThrough: this.#passedThrough,
      },
      `${describe(episode)} (${detail(episode)}): serving downloads without caching them; ` +
        `${remedy} (this is logged once per minute)`,
    );
  }
}

function describe(episode: Episode): string {
  return episode.kind === 'full' ? 'storage is full' : 'storage not writable';
}

/** `EACCES storing crates/…/x-1.0.0.crate at /srv/crates/crates/x`: errno, key, and file. */
function detail(episode: Episode): string {
  const at = episode.path ? ` at ${episode.path}` : '';
  return `${episode.code} storing ${episode.key}${at}`;
}

/**
 * A pass-through that hashes and counts the bytes and holds the latest chunk back until the
 * body ends: the last bytes go out only when the sha256 equals `expectedSha256`. A client so
 * never receives a whole unverified crate; on a mismatch the stream fails and the response is
 * cut short of its Content-Length, which cargo reports as a failed (and retried) download.
 */
export function createVerifyingStream(expectedSha256: string, maxBytes: number): Transform {
  const hash = createHash('sha256');
  let size = 0;
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > maxBytes) {
        callback(
          Errors.CARGO_CACHER_UPSTREAM_INVALID(
            `crate body exceeds ${maxBytes} bytes (--max-crate-size)`,
          ),
        );
        return;
      }
      hash.update(chunk);
      const previous = held;
      held = chunk;
      callback(null, previous);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      if (actual !== expectedSha256) {
        callback(
          Errors.CARGO_CACHER_CHECKSUM_MISMATCH(
            `sha256 ${actual} does not match the index checksum ${expectedSha256}`,
          ),
        );
        return;
      }
      callback(null, held);
    },
  });
}
