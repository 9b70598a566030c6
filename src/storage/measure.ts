/**
 * @module
 * Hashing and counting bytes on their way into storage, shared by the blob stores.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { Errors } from '../errors.ts';
import type { PutOptions, PutResult } from './blob-store.ts';

/** A pass-through that hashes and counts the bytes, failing once they pass `maxBytes`. */
export function createMeasure(maxBytes = Number.POSITIVE_INFINITY) {
  const hash = createHash('sha256');
  let size = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > maxBytes) {
        callback(Errors.CARGO_CACHER_BODY_TOO_LARGE(`body exceeds ${maxBytes} bytes`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  return { transform, result: (): PutResult => ({ size, sha256: hash.digest('hex') }) };
}

/** What {@link createMeasure} gives for a body already in memory, with the same size limit. */
export function measureBuffer(body: Buffer, maxBytes = Number.POSITIVE_INFINITY): PutResult {
  if (body.length > maxBytes) {
    throw Errors.CARGO_CACHER_BODY_TOO_LARGE(`body exceeds ${maxBytes} bytes`);
  }
  return { size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

/** Throws `CARGO_CACHER_CHECKSUM_MISMATCH` unless the stored bytes hash as expected. */
export function checkExpectedSha256(result: PutResult, options: PutOptions): void {
  if (options.expectedSha256 !== undefined && result.sha256 !== options.expectedSha256) {
    throw Errors.CARGO_CACHER_CHECKSUM_MISMATCH(
      `sha256 ${result.sha256} does not match the index checksum ${options.expectedSha256}`,
    );
  }
}

/** The lease of a store only one process writes to: granted at once, nothing to release. */
export const SOLE_WRITER_LEASE = Object.freeze({
  published: false,
  held: true,
  release: async (): Promise<void> => undefined,
});
