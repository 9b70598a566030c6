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
 * error once the resumes are used up. Destroying it destroys the body being read at once (a
 * client that hangs up must not keep a bucket connection open).
 */
export function createResumableStream(
  first: Readable,
  size: number,
  reopen: ReopenAt,
  maxResumes = MAX_RESUMES,
): Readable {
  let body = first;
  let offset = 0;
  let resumes = 0;
  const out = new Readable({
    highWaterMark: 256 * 1024,
    read() {
      body.resume();
    },
    destroy(err, callback) {
      body.destroy();
      callback(err);
    },
  });
  const attach = (stream: Readable): void => {
    body = stream;
    // Events of a body given up on are ignored: only the current one speaks.
    const current = () => body === stream && !out.destroyed;
    stream.on('data', (chunk: Buffer) => {
      if (!current()) return;
      offset += chunk.length;
      if (!out.push(chunk)) stream.pause();
    });
    stream.once('end', () => {
      if (!current()) return;
      if (offset >= size) out.push(null);
      else broke(stream, prematureEnd(offset, size));
    });
    stream.on('error', (err) => {
      if (current()) broke(stream, err);
    });
  };
  const broke = (stream: Readable, err: Error): void => {
    stream.destroy();
    if (resumes >= maxResumes || offset >= size) {
      out.destroy(err);
      return;
    }
    resumes += 1;
    reopen(offset).then(
      (next) => (out.destroyed ? next.destroy() : attach(next)),
      (reopenError: Error) => out.destroy(reopenError),
    );
  };
  attach(first);
  return out;
}

function prematureEnd(offset: number, size: number): Error {
  return Object.assign(new Error(`object body ended at ${offset} of ${size} bytes`), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  });
}
