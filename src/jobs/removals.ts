/**
 * @module
 * Upstream removals honoured: when a revalidated index file shows that versions are gone (their
 * lines removed, or the whole file answering 404), the crates held of them are quarantined at
 * once, also those nobody asked for since: a withdrawn release (a compromised one, say) is never
 * served again, and a client gets the 404 upstream gives. A yanked version keeps its line and is
 * not a removal: cargo still downloads yanked versions for existing lock files. `--keep-removed`
 * turns this off, for archives that must keep everything.
 */
import type { Catalogue } from '../cache/catalogue.ts';
import type { AppLogger } from '../logger.ts';
import { crateKey, crateLabel } from '../registry/crate-id.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { quarantine } from './quarantine.ts';

/** What the purge needs. */
export interface RemovalDeps {
  /** The tracked store: quarantining drops the catalogue row and the copy in memory. */
  store: BlobStore;
  catalogue: Catalogue;
  log: AppLogger;
  /** Told about every purged version (statistics). */
  onPurged?: (label: string) => void;
}

/** Quarantines held versions upstream removed, one crate at a time, in the background. */
export class RemovalPurger {
  readonly #deps: RemovalDeps;
  #queue: Promise<void> = Promise.resolve();

  constructor(deps: RemovalDeps) {
    this.#deps = deps;
  }

  /** Queues the purge of `versions` of crate `name` (`'all'`: every version held). */
  removed(name: string, versions: readonly string[] | 'all'): void {
    this.#queue = this.#queue.then(() => this.#purge(name, versions));
  }

  /** Resolves when every queued purge is done. */
  async idle(): Promise<void> {
    let queue: Promise<void>;
    do {
      queue = this.#queue;
      await queue;
    } while (queue !== this.#queue);
  }

  async #purge(name: string, versions: readonly string[] | 'all'): Promise<void> {
    const removed = versions === 'all' ? undefined : new Set(versions);
    for (const version of this.#deps.catalogue.heldVersions(name)) {
      if (removed && !removed.has(version)) continue;
      const label = crateLabel({ name, version });
      try {
        await quarantine(this.#deps.store, crateKey({ name, version }));
        this.#deps.log.warn({ crate: label }, `policy: purged ${label}: upstream removed it`);
        this.#deps.onPurged?.(label);
      } catch (err) {
        this.#deps.log.error({ err, crate: label }, `could not purge ${label}, removed upstream`);
      }
    }
  }
}
