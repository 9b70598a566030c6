/**
 * @module
 * Small `.crate` files kept in memory once served, so a repeated download costs no file system
 * call (open, fstat, reads, close: about a third of the CPU time of a hot download). Crates
 * never change once published, so a copy never goes stale; each copy is checked against its
 * sha256 when it is taken in, so memory only ever holds verified bytes.
 */
import { createHash } from 'node:crypto';
import { LruMap } from './lru.ts';

/** A crate held in memory. */
export interface HotCrate {
  body: Buffer;
  /** Hex sha256, the index `cksum`. */
  checksum: string;
}

/**
 * Total bytes held. Reading a crate from a file costs a read and a copy per byte on top of the
 * socket write (nginx's sendfile does neither), and profiles of hot downloads put those reads
 * at about a third of the CPU time; held here, a build fleet's usual crates skip them. Bounded
 * so that peak memory stays near the 200 MB the proxy aims for.
 */
const DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024;
/**
 * Larger crates are streamed from storage: one would evict many small ones. Most crates on
 * crates.io are far smaller; a 4 MB crate is already among the largest few percent.
 */
const DEFAULT_MAX_CRATE_BYTES = 4 * 1024 * 1024;

/** Bounded LRU of small, verified crate bodies keyed by storage key. */
export class HotCrates {
  readonly #entries: LruMap<string, HotCrate>;
  readonly #maxCrateBytes: number;

  constructor(budgetBytes = DEFAULT_BUDGET_BYTES, maxCrateBytes = DEFAULT_MAX_CRATE_BYTES) {
    this.#entries = new LruMap(budgetBytes, (crate) => crate.body.length + 256);
    this.#maxCrateBytes = maxCrateBytes;
  }

  /** The crate stored under `key`, if held. */
  get(key: string): HotCrate | undefined {
    return this.#entries.get(key);
  }

  /** Forgets the crate stored under `key` (it was deleted or replaced in storage). */
  evict(key: string): void {
    this.#entries.delete(key);
  }

  /** True when a crate of `size` bytes is small enough to be held. */
  accepts(size: number | undefined): size is number {
    return size !== undefined && size <= this.#maxCrateBytes;
  }

  /**
   * Holds a crate read whole when its sha256 matches `checksum`, and returns the bytes either
   * way (a mismatch is served as it is, as a stream would have been: cargo checks the sha256
   * itself, and storage verification deals with the file).
   */
  keep(key: string, body: Buffer, checksum: string): Buffer {
    if (createHash('sha256').update(body).digest('hex') === checksum) {
      this.#entries.set(key, { body, checksum });
    }
    return body;
  }
}
