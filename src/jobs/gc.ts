/**
 * @module
 * Expiration: one sweep keeps the crate cache under `--max-size` by removing the least recently
 * served crates first, removes crates not served for `--expire-after`, and drops cached index
 * files of crates with nothing cached that nobody asked for in that time. Pinned versions are
 * never removed. A client mid-download keeps its open file: on POSIX an unlinked file stays
 * readable through the descriptor the stream already holds.
 */
import { indexKey } from '../cache/index-cache.ts';
import { decodeIndexRecord } from '../cache/index-record.ts';
import { type CrateId, crateLabel, parseCrateKey } from '../registry/crate-id.ts';
import { crateNameFromIndexPath } from '../registry/crate-name.ts';
import type { BlobStore } from '../storage/blob-store.ts';

/** When each crate version was last served (`name@version` → ms), from the statistics. */
export interface UsageSource {
  lastServed(): Promise<Map<string, number>> | Map<string, number>;
}

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
  /** Crate bytes left after the sweep, pinned included. */
  remainingBytes: number;
  pinnedBytes: number;
  dryRun: boolean;
}

interface StoredCrate {
  key: string;
  id: CrateId;
  size: number;
  /** Last served, else when it was stored. */
  lastUsed: number;
  pinned: boolean;
}

/** Runs one sweep over `store`. */
export async function sweep(
  store: BlobStore,
  usage: UsageSource,
  policy: GcPolicy,
  now = Date.now(),
): Promise<GcReport> {
  const crates = await listCrates(store, await usage.lastServed(), policy.pinned);
  const expired = chooseExpired(crates, policy, now);
  const expiredKeys = new Set(expired.map((r) => r.key));
  const unexpired = crates.filter((c) => !expiredKeys.has(c.key));
  const overBudget = chooseOverBudget(unexpired, policy.maxSizeBytes);
  const removed = [...expired, ...overBudget];
  const removedKeys = new Set(removed.map((r) => r.key));
  const kept = crates.filter((c) => !removedKeys.has(c.key));
  if (policy.expireAfterMs !== undefined) {
    removed.push(...(await chooseUnusedIndexFiles(store, kept, now - policy.expireAfterMs)));
  }
  if (!policy.dryRun) for (const removal of removed) await store.delete(removal.key);
  return {
    removed,
    freedBytes: sum(removed.map((r) => r.size)),
    remainingBytes: sum(kept.map((c) => c.size)),
    pinnedBytes: sum(kept.filter((c) => c.pinned).map((c) => c.size)),
    dryRun: policy.dryRun === true,
  };
}

async function listCrates(
  store: BlobStore,
  lastServed: Map<string, number>,
  pinned: ReadonlySet<string>,
): Promise<StoredCrate[]> {
  const crates: StoredCrate[] = [];
  for await (const blob of store.list('crates')) {
    const id = parseCrateKey(blob.key);
    if (!id) continue;
    const label = crateLabel(id);
    const lastUsed = Math.max(lastServed.get(label) ?? 0, blob.mtimeMs);
    crates.push({ key: blob.key, id, size: blob.size, lastUsed, pinned: pinned.has(label) });
  }
  return crates;
}

function chooseExpired(crates: StoredCrate[], policy: GcPolicy, now: number): GcRemoval[] {
  if (policy.expireAfterMs === undefined) return [];
  const cutoff = now - policy.expireAfterMs;
  return crates
    .filter((c) => !c.pinned && c.lastUsed < cutoff)
    .map((c) => ({ key: c.key, size: c.size, reason: 'expired' }));
}

/** Least recently used first, until what is left fits the budget. */
function chooseOverBudget(crates: StoredCrate[], maxSizeBytes: number | undefined): GcRemoval[] {
  if (maxSizeBytes === undefined) return [];
  let total = sum(crates.map((c) => c.size));
  const removals: GcRemoval[] = [];
  const candidates = crates.filter((c) => !c.pinned).sort((a, b) => a.lastUsed - b.lastUsed);
  for (const crate of candidates) {
    if (total <= maxSizeBytes) break;
    removals.push({ key: crate.key, size: crate.size, reason: 'over-budget' });
    total -= crate.size;
  }
  return removals;
}

/** Index files of crates with no version cached, not checked upstream since `cutoff`. */
async function chooseUnusedIndexFiles(
  store: BlobStore,
  kept: StoredCrate[],
  cutoff: number,
): Promise<GcRemoval[]> {
  const namesWithCrates = new Set(kept.map((c) => c.id.name));
  const removals: GcRemoval[] = [];
  for await (const blob of store.list('index')) {
    const path = blob.key.slice('index/'.length);
    const name = crateNameFromIndexPath(path);
    if (name === undefined || namesWithCrates.has(name) || blob.mtimeMs >= cutoff) continue;
    const record = await store.read(indexKey(path));
    const file = record && decodeIndexRecord(record);
    if (file && file.checkedAt >= cutoff) continue;
    removals.push({ key: blob.key, size: blob.size, reason: 'unused-index' });
  }
  return removals;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
