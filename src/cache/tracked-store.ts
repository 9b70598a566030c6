/**
 * @module
 * The store as every part of an instance sees it: each publish and delete also updates what
 * knows what is held, in the same step. The catalogue records the object once it is published
 * and forgets it once it is deleted; the crates held in memory drop their copy before a delete
 * or a replacement, so an evicted crate is fetched again, as it would be without them. Every
 * other member passes through, so the wrapper keeps up with what the store interface gains.
 */
import type { Readable } from 'node:stream';
import type { AppLogger } from '../logger.ts';
import type { BlobStore, PutOptions, PutResult } from '../storage/blob-store.ts';
import type { Catalogue } from './catalogue.ts';
import type { HotCrates } from './hot-crates.ts';

/** What the wrapper keeps in step with the store. */
export interface TrackedParts {
  catalogue: Catalogue;
  hotCrates?: HotCrates;
  log: AppLogger;
}

/**
 * Wraps `store` so that puts and deletes are recorded. A catalogue write that fails (a full
 * disk) does not fail the put: the object is published, and the next reconcile records it.
 */
export function trackChanges(store: BlobStore, parts: TrackedParts): BlobStore {
  const record = (what: string, key: string, write: () => void) => {
    try {
      write();
    } catch (err) {
      parts.log.warn({ err, key }, `catalogue: could not record a ${what}; the reconcile will`);
    }
  };
  return new Proxy(store, {
    get(target, property) {
      if (property === 'put') {
        return async (key: string, source: Readable | Buffer, options?: PutOptions) => {
          parts.hotCrates?.evict(key);
          const result: PutResult = await target.put(key, source, options);
          record('publish', key, () => parts.catalogue.recordStored(key, result));
          return result;
        };
      }
      if (property === 'delete') {
        return async (key: string) => {
          parts.hotCrates?.evict(key);
          await target.delete(key);
          record('delete', key, () => parts.catalogue.recordDeleted(key));
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
