/**
 * @module
 * Expiration: one sweep removes crates and toolchain files not served for `--expire-after`, then
 * the least recently served of them until the cache fits `--max-size`, then cached index files of
 * crates with nothing cached that were not fetched or revalidated in the `--expire-after` time.
 * Pinned versions (and the files of channels `--rustup-mirror` follows) are never removed. The catalogue lists candidates least recently used first, so a sweep reads only
 * what it removes (and the pinned rows it skips), whatever the size of the cache. A client
 * mid-download keeps its open file: on POSIX an unlinked file stays readable through the
 * descriptor the stream already holds.
 */
import { type Catalogue, type CatalogueObject, labelOf } from '../cache/catalogue.ts';
import { crateKey, parseCrateLabel } from '../registry/crate-id.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { runPool } from './worker-pool.ts';

/** What a sweep may do. */
export interface GcPolicy {
  maxSizeBytes?: number;
  expireAfterMs?: number;
  /** `name@version` labels that are never removed. */
  pinned: ReadonlySet<string>;
  dryRun?: boolean;
}

/** One removed (or, dry, removable) blob. */
export interface GcRemoval {
  key: string;
  size: number;
  reason: 'expired' | 'over-budget' | 'unused-index';
}

/** What a sweep did. */
export interface GcReport {
  removed: GcRemoval[];
  freedBytes: number;
  /** Crate and toolchain bytes left after the sweep, pinned included. */
  remainingBytes: number;
  pinnedBytes: number;
  dryRun: boolean;
}

/** What a sweep works on: the catalogue chooses, the store (tracked by it) deletes. */
export interface GcDeps {
  store: BlobStore;
  catalogue: Catalogue;
}

/** Runs one sweep. */
export async function sweep(deps: GcDeps, policy: GcPolicy, now = Date.now()): Promise<GcReport> {
  const { catalogue } = deps;
  const cutoff = policy.expireAfterMs === undefined ? undefined : now - policy.expireAfterMs;
  const crates = chooseCrates(catalogue, policy, cutoff);
  if (!policy.dryRun) await removeAll(deps.store, crates);
  // After the crates: an index file whose last crate just went is unused now (dry runs only see
  // the crates that are gone already).
  const index = cutoff === undefined ? [] : chooseIndexFiles(catalogue, cutoff);
  if (!policy.dryRun) await removeAll(deps.store, index);
  const removed = [...crates, ...index];
  const cratesFreed = sum(crates);
  const held = heldBytes(catalogue);
  return {
    removed,
    freedBytes: cratesFreed + sum(index),
    remainingBytes: policy.dryRun ? held - cratesFreed : held,
    pinnedBytes: pinnedBytes(catalogue, policy.pinned),
    dryRun: policy.dryRun === true,
  };
}

/**
 * What `--max-size` counts: crates and toolchain files (index files are small, and go with the
 * crates they describe).
 */
export function heldBytes(catalogue: Catalogue): number {
  const totals = catalogue.totals();
  return totals.crates.bytes + totals.toolchains.bytes;
}

/**
 * Walks crates and toolchain files least recently used first: expired ones go, then more until
 * the rest fits the budget. The walk stops at the first one that is neither expired nor needed
 * to fit.
 */
function chooseCrates(
  catalogue: Catalogue,
  policy: GcPolicy,
  cutoff: number | undefined,
): GcRemoval[] {
  const removals: GcRemoval[] = [];
  let remaining = heldBytes(catalogue);
  for (const object of leastRecentlyUsedHeld(catalogue)) {
    if (isPinned(object, policy.pinned)) continue;
    const expired = cutoff !== undefined && object.usedAt < cutoff;
    const overBudget = policy.maxSizeBytes !== undefined && remaining > policy.maxSizeBytes;
    if (!expired && !overBudget) break;
    removals.push({
      key: object.key,
      size: object.size,
      reason: expired ? 'expired' : 'over-budget',
    });
    remaining -= object.size;
  }
  return removals;
}

/** Crates and toolchain files together, least recently used first (two walks merged). */
function* leastRecentlyUsedHeld(catalogue: Catalogue): Generator<CatalogueObject> {
  const crates = catalogue.leastRecentlyUsed('crates');
  const toolchains = catalogue.leastRecentlyUsed('toolchains');
  let crate = crates.next();
  let toolchain = toolchains.next();
  while (!crate.done || !toolchain.done) {
    if (toolchain.done || (!crate.done && !usedBefore(toolchain.value, crate.value))) {
      yield crate.value as CatalogueObject;
      crate = crates.next();
    } else {
      yield toolchain.value;
      toolchain = toolchains.next();
    }
  }
}

function usedBefore(a: CatalogueObject, b: CatalogueObject): boolean {
  return a.usedAt < b.usedAt || (a.usedAt === b.usedAt && a.key < b.key);
}

function chooseIndexFiles(catalogue: Catalogue, cutoff: number): GcRemoval[] {
  const removals: GcRemoval[] = [];
  for (const object of catalogue.unusedIndexFiles(cutoff)) {
    removals.push({ key: object.key, size: object.size, reason: 'unused-index' });
  }
  return removals;
}

/** Deletes run this many at a time: on a filesystem they go to libuv's threads, on S3 to HTTP. */
const DELETE_CONCURRENCY = 8;

/** Deletes every removal; the first failure is thrown once the others are done. */
async function removeAll(store: BlobStore, removals: GcRemoval[]): Promise<void> {
  const failures: unknown[] = [];
  await runPool(removals, DELETE_CONCURRENCY, async (removal) => {
    await store.delete(removal.key).catch((err: unknown) => failures.push(err));
  });
  if (failures.length > 0) throw failures[0];
}

function isPinned(object: CatalogueObject, pinned: ReadonlySet<string>): boolean {
  const label = labelOf(object);
  return label !== undefined && pinned.has(label);
}

/** Bytes of the pinned versions held: one lookup per pin. */
function pinnedBytes(catalogue: Catalogue, pinned: ReadonlySet<string>): number {
  let bytes = 0;
  for (const label of pinned) bytes += catalogue.sizeOf(crateKey(parseCrateLabel(label))) ?? 0;
  return bytes;
}

function sum(removals: GcRemoval[]): number {
  return removals.reduce((total, removal) => total + removal.size, 0);
}
