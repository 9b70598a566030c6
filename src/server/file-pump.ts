/**
 * @module
 * Sends a file read at positions (a stored toolchain archive, or one still being downloaded) to
 * one client through two buffers that take turns: one is being written to the socket while the
 * next chunk is read into the other, and a buffer is read into again only once the socket took
 * its last bytes. Nothing is allocated per chunk: ten clients streaming a 500 MB archive leave no
 * garbage behind for the collector to catch up with (a stream allocates a new buffer for every
 * read, and those pile up to tens of MB between collections), so memory stays flat.
 */
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { PositionalBlob } from '../storage/blob-store.ts';

/** Bytes read and written at a time: two of these per client. */
const CHUNK_BYTES = 128 * 1024;

type Response = ServerResponse | Http2ServerResponse;

/** How the response starts, and how it says that the file failed before its first byte. */
export interface PumpStart {
  /** Writes the status line and headers (called once the first chunk is in hand). */
  writeHead(): void;
  /** Answers an error instead: nothing was sent yet. */
  failEarly(err: unknown): void;
}

/**
 * Writes the whole file to `res` and ends it. A failure before the first byte is answered as an
 * error; a later one (the file's, or a download that failed its check) destroys the response,
 * so the client sees a broken transfer, never a clean end. Never rejects; closes the file.
 */
export async function pumpToResponse(
  file: PositionalBlob,
  res: Response,
  start: PumpStart,
): Promise<void> {
  const buffers = [Buffer.allocUnsafe(CHUNK_BYTES), Buffer.allocUnsafe(CHUNK_BYTES)] as const;
  const flushed: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  const out = writer(res);
  let position = 0;
  let started = false;
  try {
    for (let turn = 0; ; turn = 1 - turn) {
      await flushed[turn];
      const buffer = buffers[turn] as Buffer;
      const read = await file.read(buffer, position);
      if (!started) {
        started = true;
        start.writeHead();
      }
      if (read === 0) break;
      position += read;
      flushed[turn] = out.write(buffer.subarray(0, read));
      // Seen now rather than at the buffer's next turn: no unhandled rejection meanwhile.
      flushed[turn]?.catch(() => undefined);
    }
    await Promise.all(flushed);
    res.end();
  } catch (err) {
    if (started) res.destroy(err as Error);
    else start.failEarly(err);
  } finally {
    out.dispose();
    await file.close().catch(() => undefined);
  }
}

/** Writes that resolve once the socket took the bytes, and fail when the client goes away. */
function writer(res: Response) {
  const waiting = new Set<(err?: Error | null) => void>();
  let gone: Error | undefined;
  const onClose = () => {
    gone ??= new Error('the client closed the connection');
    for (const done of waiting) done(gone);
  };
  res.once('close', onClose);
  return {
    write(chunk: Buffer): Promise<void> {
      if (gone || res.destroyed) return Promise.reject(gone ?? new Error('response destroyed'));
      return new Promise<void>((resolve, reject) => {
        const done = (err?: Error | null) => {
          waiting.delete(done);
          if (err) reject(err);
          else resolve();
        };
        waiting.add(done);
        (res as ServerResponse).write(chunk, done);
      });
    },
    dispose() {
      res.off('close', onClose);
    },
  };
}
