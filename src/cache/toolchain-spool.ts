/**
 * @module
 * One archive download in progress, on disk, that any number of clients read while it arrives.
 * The upstream body is written to a spool file while its sha256 is computed (one
 * `await pipeline(...)`); each client gets a {@link Spool.reader} that follows the file as it
 * grows, at its own pace, so memory stays flat whatever the archive's size and however many
 * clients ask, and a slow client never slows the download.
 *
 * Nothing unverified ever reaches a client as a good response: readers are held back one byte
 * behind the download until the whole file matched its expected sha256. When it does not (or the
 * download breaks off), every reader fails, and a client being streamed sees its connection
 * destroyed instead of a clean end.
 */
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors } from '../errors.ts';
import type { PositionalBlob } from '../storage/blob-store.ts';

/** What a finished, verified download measured. */
export interface SpoolResult {
  size: number;
  sha256: string;
}

/** Where to spool and what to expect. */
export interface SpoolOptions {
  /** The directory of spool files (created when missing). */
  dir: string;
  expectedSha256: string;
  /** Upstream's Content-Length, when it sent one: a body of another size fails. */
  size: number | undefined;
  /** Largest body accepted. */
  maxBytes: number;
  /** Names the file in errors (`dist/…/rustc-….tar.xz`). */
  label: string;
  /**
   * Also gets every byte as it arrives (the store's put, which checks the hash itself), ended
   * once the download is verified and destroyed when it fails. A tee that fails (storage full)
   * is dropped: the download goes on for its clients.
   */
  tee?: Writable;
}

/** A download being spooled; see the module comment. */
export class Spool {
  readonly file: string;
  readonly size: number | undefined;
  /** Resolves once the whole body is on disk and matched; rejects when it failed. */
  readonly done: Promise<SpoolResult>;
  readonly #handle: FileHandle;
  readonly #events = new EventEmitter();
  #written = 0;
  #state: 'running' | 'verified' | 'failed' = 'running';
  #error: Error | undefined;
  #readers = 0;
  #disposed = false;
  #tee: Writable | undefined;

  private constructor(file: string, handle: FileHandle, body: Readable, options: SpoolOptions) {
    this.file = file;
    this.size = options.size;
    this.#tee = options.tee;
    // Its failure is the put's to report; the download only stops feeding it.
    this.#tee?.on('error', () => undefined);
    this.#handle = handle;
    this.#events.setMaxListeners(0);
    this.done = this.#receive(body, options);
    // Failures are reported to whoever awaits `done` and to every reader; this keeps an
    // unobserved failure from counting as unhandled.
    this.done.catch(() => undefined);
  }

  /** Starts spooling `body` into a new file below `options.dir`. */
  static async start(body: Readable, options: SpoolOptions): Promise<Spool> {
    await mkdir(options.dir, { recursive: true });
    const file = join(options.dir, `${randomUUID()}.part`);
    let handle: FileHandle;
    try {
      handle = await open(file, 'wx+');
    } catch (err) {
      body.destroy();
      options.tee?.destroy(err as Error);
      throw Errors.CARGO_CACHER_STORAGE(
        `cannot spool ${options.label}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return new Spool(file, handle, body, options);
  }

  /** Bytes on disk so far. */
  get written(): number {
    return this.#written;
  }

  /**
   * The file for one reader, read at positions into the reader's own buffers: a read waits for
   * bytes still on their way, the last byte is held back until the whole file is verified, and
   * every read fails once the download did.
   */
  source(): PositionalBlob {
    if (this.#disposed) throw new Error('spool already disposed');
    this.#readers++;
    let closed = false;
    return {
      size: this.size ?? 0,
      read: (buffer, position) => this.#readAt(buffer, position),
      close: async () => {
        if (closed) return;
        closed = true;
        this.#releaseReader();
      },
    };
  }

  /**
   * Removes the spool file. Readers still going keep reading through the open file, which is
   * closed once the last one ends.
   */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await rm(this.file, { force: true });
    if (this.#readers === 0) await this.#handle.close();
  }

  async #receive(body: Readable, options: SpoolOptions): Promise<SpoolResult> {
    const hash = createHash('sha256');
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (this.#written + chunk.length > options.maxBytes) {
          callback(tooLarge(options));
          return;
        }
        hash.update(chunk);
        this.#handle
          .write(chunk, 0, chunk.length, this.#written)
          .then(() => {
            this.#written += chunk.length;
            this.#events.emit('progress');
            return this.#feedTee(chunk);
          })
          .then(() => callback(), callback);
      },
    });
    try {
      await pipeline(body, sink);
      const sha256 = hash.digest('hex');
      if (options.size !== undefined && this.#written !== options.size) {
        throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
          `${options.label} ended after ${this.#written} of ${options.size} bytes`,
        );
      }
      if (sha256 !== options.expectedSha256) {
        throw Errors.CARGO_CACHER_CHECKSUM_MISMATCH(
          `${options.label} has sha256 ${sha256}, expected ${options.expectedSha256}; not cached`,
        );
      }
      this.#state = 'verified';
      this.#events.emit('progress');
      this.#tee?.end();
      return { size: this.#written, sha256 };
    } catch (err) {
      this.#state = 'failed';
      this.#error = err as Error;
      this.#events.emit('progress');
      this.#tee?.destroy(err as Error);
      throw err;
    }
  }

  /** Hands a chunk to the tee, waiting while it is full; a tee that is gone is dropped. */
  async #feedTee(chunk: Buffer): Promise<void> {
    const tee = this.#tee;
    if (!tee) return;
    if (tee.destroyed) {
      this.#tee = undefined;
      return;
    }
    if (tee.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        tee.off('drain', done);
        tee.off('close', done);
        resolve();
      };
      tee.once('drain', done);
      tee.once('close', done);
    });
  }

  /** Reads what a reader may have at `position`, waiting for it when needed; 0 at the end. */
  async #readAt(buffer: Buffer, position: number): Promise<number> {
    for (;;) {
      if (this.#state === 'failed') throw this.#error;
      // Held one byte back until verified: a failed download never looks complete.
      const limit = this.#state === 'verified' ? this.#written : this.#written - 1;
      if (position < limit) {
        const length = Math.min(buffer.length, limit - position);
        const { bytesRead } = await this.#handle.read(buffer, 0, length, position);
        if (bytesRead === 0) throw Errors.CARGO_CACHER_STORAGE(`spool file ${this.file} shrank`);
        return bytesRead;
      }
      if (this.#state === 'verified') return 0;
      await once(this.#events, 'progress');
    }
  }

  #releaseReader(): void {
    this.#readers--;
    if (this.#disposed && this.#readers === 0) {
      this.#handle.close().catch(() => undefined);
    }
  }
}

function tooLarge(options: SpoolOptions): Error {
  return Errors.CARGO_CACHER_UPSTREAM_INVALID(
    `${options.label} is larger than ${options.maxBytes} bytes; not cached`,
  );
}
