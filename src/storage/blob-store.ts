/**
 * @module
 * The storage interface. Everything cargo-cacher keeps (index files, `.crate` files, the
 * upstream `config.json`) goes through it, so the filesystem store and an object store are
 * interchangeable. Keys are relative, `/`-separated, and made only by cargo-cacher itself.
 */
import type { Readable } from 'node:stream';

/** Size and modification time of a stored blob. */
export interface BlobStat {
  size: number;
  mtimeMs: number;
}

/** What {@link BlobStore.put} learnt while storing. */
export interface PutResult {
  size: number;
  /** Hex sha256 of the stored bytes. */
  sha256: string;
}

/** Options of {@link BlobStore.put}. */
export interface PutOptions {
  /** When set, the blob is published only if its sha256 equals this (hex, lowercase). */
  expectedSha256?: string;
  /** Largest size accepted; a larger body is discarded and the put fails. */
  maxBytes?: number;
}

/** A blob opened for reading. */
export interface OpenedBlob {
  stream: Readable;
  size: number;
  mtimeMs: number;
}

/** Where cargo-cacher keeps its bytes. Writes are all-or-nothing. */
export interface BlobStore {
  /** Human-readable location, for the startup log line. */
  readonly location: string;
  /** Reads a whole blob (meant for small ones: index files), or `undefined` if absent. */
  read(key: string): Promise<Buffer | undefined>;
  /** Opens a blob as a stream, or `undefined` if absent. */
  open(key: string): Promise<OpenedBlob | undefined>;
  /** Size and mtime, or `undefined` if absent. */
  stat(key: string): Promise<BlobStat | undefined>;
  /**
   * Streams `source` into a temporary blob while hashing it, then publishes it under `key` in one
   * step, so readers see the old blob, no blob, or the whole new one, never a part. With
   * `expectedSha256` a mismatching body is discarded and the put rejects with
   * `CARGO_CACHER_CHECKSUM_MISMATCH`.
   */
  put(key: string, source: Readable | Buffer, options?: PutOptions): Promise<PutResult>;
  /** Removes a blob; absent blobs are not an error. */
  delete(key: string): Promise<void>;
  /** Lists blobs below a key prefix (`crates/`), recursively. */
  list(prefix: string): AsyncIterable<{ key: string } & BlobStat>;
  /** Removes what an interrupted put left behind. Called once at startup. */
  cleanup(): Promise<number>;
}
