/**
 * @module
 * An imported index file meets the store's copy: the two merge (`registry/index-merge.ts`) so no
 * line is lost, the newer copy (the bundle's `createdAt` against the stored record's
 * `checkedAt`) winning for versions both list, and the result is stored as a record checked at
 * the later of the two times. A file from a bundle has no upstream validators: a later
 * revalidation, when an upstream is in reach, fetches it whole.
 */
import {
  createIndexFile,
  decodeIndexRecord,
  encodeIndexRecord,
  type IndexFile,
} from '../cache/index-record.ts';
import { mergeIndexFiles } from '../registry/index-merge.ts';
import type { BlobStore } from '../storage/blob-store.ts';

/** What storing an imported index file did. */
export type IndexFileOutcome = 'new' | 'merged' | 'unchanged';

/** Stores the bundle's `body` of the index file at `key`, merged with the store's copy. */
export async function storeImportedIndexFile(
  store: BlobStore,
  key: string,
  body: Buffer,
  bundleCreatedAt: number,
): Promise<IndexFileOutcome> {
  const record = await store.read(key);
  const held = record && decodeIndexRecord(record);
  if (!held) {
    await store.put(key, encodeIndexRecord(createIndexFile(body, {}, bundleCreatedAt)));
    return 'new';
  }
  const bundleIsNewer = bundleCreatedAt > held.checkedAt;
  const merged = bundleIsNewer
    ? mergeIndexFiles(body, held.body)
    : mergeIndexFiles(held.body, body);
  const unchanged = merged.body.equals(held.body);
  // The same lines, confirmed later than the store last checked: only the time moves on.
  if (unchanged && !bundleIsNewer) return 'unchanged';
  await store.put(key, encodeIndexRecord(mergedRecord(held, merged.body, bundleCreatedAt)));
  return unchanged ? 'unchanged' : 'merged';
}

/**
 * The record of a merged file: checked at the later of the two times. Upstream's validators stay
 * only while the body is upstream's own, so a revalidation never renews bytes upstream did not
 * send.
 */
function mergedRecord(held: IndexFile, body: Buffer, bundleCreatedAt: number): IndexFile {
  const checkedAt = Math.max(held.checkedAt, bundleCreatedAt);
  if (body.equals(held.body)) return { ...held, checkedAt };
  return createIndexFile(body, {}, checkedAt);
}
