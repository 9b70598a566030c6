/**
 * @module
 * Disk full, noticed and survived. When a write to storage fails for lack of space (ENOSPC,
 * EDQUOT), the crate cache stops trying to store for a minute and passes downloads through to
 * clients instead (verified, see {@link createVerifyingStream}); then one store is tried again,
 * and its success ends the episode. The condition is logged once per minute, not per request.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';

/** How long storing is not even tried after a disk-full failure, and the log interval. */
export const DISK_FULL_RETRY_MS = 60_000;

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** True when `err` (or its cause) says the storage is out of space. */
export function isDiskFull(err: unknown): boolean {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 4;
    depth++
  ) {
    if (typeof e.code === 'string' && FULL_CODES.has(e.code)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** Tracks whether storage is full, and says so in the log once per minute. */
export class DiskFullGuard {
  readonly #log: AppLogger;
  readonly #now: () => number;
  #fullUntil = 0;
  #lastLogAt = Number.NEGATIVE_INFINITY;
  #passedThrough = 0;

  constructor(log: AppLogger, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
  }

  /** True while storing should not be tried (a disk-full failure less than a minute ago). */
  get full(): boolean {
    return this.#now() < this.#fullUntil;
  }

  /** True once a disk-full failure was seen and no store has succeeded since. */
  get episode(): boolean {
    return this.#fullUntil !== 0;
  }

  /** Reports a failed write; returns true (and handles the log) when it was a full disk. */
  report(err: unknown, what: string): boolean {
    if (!isDiskFull(err)) return false;
    const now = this.#now();
    this.#fullUntil = now + DISK_FULL_RETRY_MS;
    this.#maybeLog(now, what, (err as { code?: string }).code ?? 'ENOSPC');
    return true;
  }

  /** Counts a crate served without being stored. */
  passedThrough(what: string): void {
    this.#passedThrough += 1;
    this.#maybeLog(this.#now(), what, 'ENOSPC');
  }

  /** A store succeeded: if the disk was full, it no longer is. */
  stored(): void {
    if (this.#fullUntil === 0) return;
    this.#fullUntil = 0;
    this.#lastLogAt = Number.NEGATIVE_INFINITY;
    this.#log.notice('storage has space again: caching downloads again');
  }

  #maybeLog(now: number, what: string, code: string): void {
    if (now - this.#lastLogAt < DISK_FULL_RETRY_MS) return;
    this.#lastLogAt = now;
    this.#log.error(
      { code, passedThrough: this.#passedThrough },
      `storage is full (${code} storing ${what}): serving downloads without caching them; ` +
        'free space under the storage root (this is logged once per minute)',
    );
  }
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
