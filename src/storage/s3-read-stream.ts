/**
 * @module
 * A read stream over one S3 object that survives a broken connection: when the body stops
 * short, the rest is asked for with a ranged GET from the byte reached, pinned to the same
 * object version by its ETag. A crate stream to cargo can run for minutes on a slow client, and
 * one reset between the proxy and the bucket should not cost cargo the whole download.
 */
import { Readable } from 'node:stream';

/** Opens the object again from `offset` to its end (`Range: bytes=offset-`, `If-Match`). */
export type ReopenAt = (offset: number) => Promise<Readable>;

/** How many times one read may resume before the error reaches the reader. */
const MAX_RESUMES = 3;

/**
 * Wraps the first GET's body. The result ends after exactly `size` bytes, or fails with the last
 * error once the resumes are used up. Destroying it destroys the body being read.
 */
export function createResumableStream(
  first: Readable,
  size: number,
  reopen: ReopenAt,
  maxResumes = MAX_RESUMES,
): Readable {
  return Readable.from(readResuming(first, size, reopen, maxResumes), {
    objectMode: false,
    highWaterMark: 256 * 1024,
  });
}

async function* readResuming(
  first: Readable,
  size: number,
  reopen: ReopenAt,
  maxResumes: number,
): AsyncGenerator<Buffer> {
  let body = first;
  let offset = 0;
  let resumes = 0;
  for (;;) {
    try {
      for await (const chunk of body) {
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        offset += bytes.length;
        yield bytes;
      }
      if (offset >= size) return;
      throw Object.assign(new Error(`object body ended at ${offset} of ${size} bytes`), {
        code: 'ERR_STREAM_PREMATURE_CLOSE',
      });
    } catch (err) {
      body.destroy();
      if (resumes >= maxResumes || offset >= size) throw err;
      resumes += 1;
      body = await reopen(offset);
    }
  }
}
