/**
 * @module
 * Cache size and object counts for /metrics, `/api/v1/stats`, the dashboard and `cargo-cacher
 * stats`: the totals the catalogue keeps up to date, one row read per area, so they cost the
 * same at any size and are right from the first scrape after a restart.
 */
import type { Catalogue } from '../cache/catalogue.ts';

/** Size of one area of the cache. */
export interface AreaSize {
  objects: number;
  bytes: number;
}

/** The cache's size. */
export interface CacheSize {
  crates: AreaSize;
  index: AreaSize;
  /** rustup's files (manifests, archives, rustup-init). */
  toolchains: AreaSize;
  /** When the figures were read (ms since the epoch). */
  measuredAt: number;
}

/** The catalogue's totals of crates, index files and toolchain files. */
export function catalogueSize(catalogue: Catalogue, now: () => number = Date.now): CacheSize {
  const totals = catalogue.totals();
  return {
    crates: totals.crates,
    index: totals.index,
    toolchains: totals.toolchains,
    measuredAt: now(),
  };
}
