/**
 * @module
 * Moving a crate out of the served tree: it is copied under `quarantine/` (kept for inspection)
 * and deleted from `crates/`, so it is never served again. The integrity check quarantines
 * corrupt crates; the removal purge quarantines versions upstream withdrew.
 */
import type { BlobStore } from '../storage/blob-store.ts';

/** Copies `key` to `quarantine/<key>` (best effort) and deletes it. */
export async function quarantine(store: BlobStore, key: string): Promise<void> {
  const opened = await store.open(key);
  if (opened) {
    try {
      await store.put(`quarantine/${key}`, opened.stream);
    } catch {
      opened.stream.destroy();
    }
  }
  await store.delete(key);
}
