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

/**
 * A blob opened for reads at positions, into buffers the caller brings (and reuses): large files
 * sent to many clients this way leave no garbage behind (toolchain archives).
 */
export interface PositionalBlob {
  size: number;
  /** Reads up to `buffer.length` bytes at `position`; 0 at the end. */
  read(buffer: Buffer, position: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * A claim on filling a missing blob, from {@link BlobStore.lease}. Instances sharing one store
 * use it so that a miss is fetched upstream once, not once per instance. It is only an
 * optimisation: puts are all-or-nothing whoever holds the lease, so nothing depends on it.
 */
export interface BlobLease {
  /** True when another process published the blob while we waited: read it, fetch nothing. */
  readonly published: boolean;
  /**
   * True when this process holds the claim. False when the blob was published meanwhile, or
   * when the wait for another holder ran out (a fetch goes ahead anyway; longer work, such as
   * listing a whole bucket, is better put off).
   */
  readonly held: boolean;
  /** Gives the claim up, after the put or its failure. Never rejects. */
  release(): Promise<void>;
}

/** Keys are made by cargo-cacher, but are checked anyway: no path can leave the root. */
const SAFE_KEY = /^(?:[A-Za-z0-9_.+-]+\/)*[A-Za-z0-9_.+-]+$/;

/** True when `key` is a well-formed storage key: `/`-separated safe names, no `.` or `..`. */
export function isSafeKey(key: string): boolean {
  return SAFE_KEY.test(key) && !key.split('/').some((part) => part === '.' || part === '..');
}

/** Where cargo-cacher keeps its bytes. Writes are all-or-nothing. */
export interface BlobStore {
  /** Human-readable location, for the startup log line. */
  readonly location: string;
  /**
   * True when several instances may use the store at once (a bucket): each keeps a catalogue of
   * its own, and one listing a day is shared between them (see `jobs/bucket-listing.ts`).
   */
  readonly shared: boolean;
  /** Reads a whole blob (meant for small ones: index files), or `undefined` if absent. */
  read(key: string): Promise<Buffer | undefined>;
  /** Opens a blob as a stream, or `undefined` if absent. */
  open(key: string): Promise<OpenedBlob | undefined>;
  /** Size and mtime, or `undefined` if absent. */
  stat(key: string): Promise<BlobStat | undefined>;
  /**
   * Opens a blob for positional reads, or `undefined` if absent. Optional: a store that cannot
   * (an object store) leaves it out, and callers stream with {@link open}.
   */
  openPositional?(key: string): Promise<PositionalBlob | undefined>;
  /**
   * Streams `source` into a temporary blob while hashing it, then publishes it under `key` in one
   * step, so readers see the old blob, no blob, or the whole new one, never a part. With
   * `expectedSha256` a mismatching body is discarded and the put rejects with
   * `CARGO_CACHER_CHECKSUM_MISMATCH`.
   */
  put(key: string, source: Readable | Buffer, options?: PutOptions): Promise<PutResult>;
  /** Removes a blob; absent blobs are not an error. */
  delete(key: string): Promise<void>;
  /**
   * Lists blobs below a key prefix (`crates/`), recursively, in key order (byte order, as S3
   * lists): the catalogue's reconcile merges the listing with its own rows in that order.
   */
  list(prefix: string): AsyncIterable<{ key: string } & BlobStat>;
  /** Removes what an interrupted put left behind. Called once at startup. */
  cleanup(): Promise<number>;
  /**
   * Claims the right to fill the missing blob `key`. A store shared by several processes waits
   * (bounded) while another one holds the claim, and reports whether the blob appeared; a store
   * only one process uses grants it at once.
   */
  lease(key: string): Promise<BlobLease>;
  /** Lets go of connections (an object store's HTTP agent); the store is not used after. */
  close(): Promise<void>;
}
