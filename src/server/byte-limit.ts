/**
 * @module
 * A pass-through stream that fails once more than a given number of bytes went through it.
 */
import { Transform } from 'node:stream';
import { Errors } from '../errors.ts';

/** Counts bytes and fails with `CARGO_CACHER_BODY_TOO_LARGE` past `maxBytes`. */
export function createByteLimit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > maxBytes)
        callback(Errors.CARGO_CACHER_BODY_TOO_LARGE(`body exceeds ${maxBytes} bytes`));
      else callback(null, chunk);
    },
  });
}
