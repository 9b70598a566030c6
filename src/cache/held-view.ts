/**
 * @module
 * The index of what is held, as served: with `--offline`, with `--only-held`, and whenever
 * upstream cannot be reached, an index file lists only the versions whose `.crate` the cache
 * holds, so cargo resolves to what it can download instead of to a version it would then fail to
 * fetch (502 with upstream down, 404 offline). A file with no held version answers 404. Kept
 * lines are upstream's bytes; the ETag is that of the bytes served. The reduced copy is kept per
 * file until upstream's file or the set of held crates changes.
 */
import type { IndexTreeFile } from '../git/local-index.ts';
import type { OverlayFilter, OverlayState } from '../git/overlay-filter.ts';
import { crateNameFromIndexPath, indexPath } from '../registry/crate-name.ts';
import { keepHeldVersions } from '../registry/held-filter.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { Catalogue } from './catalogue.ts';
import { type IndexOutcome, indexKey } from './index-cache.ts';
import { decodeIndexRecord, etagOfBody, type IndexFile } from './index-record.ts';
import type { IndexView } from './index-variants.ts';
import { LruMap } from './lru.ts';

/** When the view applies. */
export interface HeldViewOptions {
  /** Always (`--offline`, `--only-held`). */
  always: boolean;
  /** True while upstream cannot be reached (the index cache's last attempt failed). */
  upstreamFailing: () => boolean;
}

interface Reduced {
  source: IndexFile;
  generation: number;
  /** `undefined` when nothing of the crate is held. */
  served: IndexFile | undefined;
}

/** Reduced copies kept: one per index file served through the view. */
const ENTRIES = 20_000;

/** Serves index files reduced to the held versions when the options say so. */
export class HeldIndexView implements IndexView {
  readonly #catalogue: Pick<Catalogue, 'heldVersions' | 'heldGeneration'>;
  readonly #options: HeldViewOptions;
  readonly #reduced = new LruMap<string, Reduced>(ENTRIES);

  constructor(
    catalogue: Pick<Catalogue, 'heldVersions' | 'heldGeneration'>,
    options: HeldViewOptions,
  ) {
    this.#catalogue = catalogue;
    this.#options = options;
  }

  /** True when served files are reduced to what is held right now. */
  applies(outcome: IndexOutcome = 'hit'): boolean {
    return this.#options.always || outcome === 'stale' || this.#options.upstreamFailing();
  }

  serve(path: string, file: IndexFile, outcome: IndexOutcome): IndexFile | undefined {
    if (!this.applies(outcome)) return file;
    const name = crateNameFromIndexPath(path);
    if (name === undefined) return file;
    const generation = this.#catalogue.heldGeneration;
    const kept = this.#reduced.get(path);
    if (kept && kept.source === file && kept.generation === generation) return kept.served;
    const held = keepHeldVersions(file.body, new Set(this.#catalogue.heldVersions(name)));
    const served =
      held.versions === 0
        ? undefined
        : held.body === file.body
          ? file
          : { ...file, body: held.body, etag: etagOfBody(held.body) };
    this.#reduced.set(path, { source: file, generation, served });
    return served;
  }
}

/**
 * The index of what is held for the git index: a filter of the overlay's files, made anew for
 * each overlay when it applies (always, or while upstream cannot be reached). Files of crates
 * with nothing held are removed from the tree; the others keep the held versions' lines.
 */
export function heldOverlayFilter(
  catalogue: Pick<Catalogue, 'heldVersions' | 'heldCrateNames'>,
  always: boolean,
): (state: OverlayState) => OverlayFilter | undefined {
  return ({ upstreamReachable }) => {
    if (!always && upstreamReachable) return undefined;
    // One pass over the held names, so the many files of crates not held cost a Set lookup.
    const names = new Set(catalogue.heldCrateNames());
    return {
      filter(path, body) {
        const name = crateNameFromIndexPath(path)?.toLowerCase();
        if (name === undefined) return undefined;
        if (!names.has(name)) return null;
        const held = keepHeldVersions(body, new Set(catalogue.heldVersions(name)));
        if (held.versions === 0) return null;
        return held.body === body ? undefined : held.body;
      },
      changesAt: () => undefined,
    };
  };
}

/**
 * The index files of the crates held, as stored (upstream's bytes): what an air-gapped instance
 * with no upstream git index serves over git, through the same filters.
 */
export async function* heldIndexFiles(
  catalogue: Pick<Catalogue, 'heldCrateNames'>,
  store: Pick<BlobStore, 'read'>,
): AsyncGenerator<IndexTreeFile> {
  for (const name of catalogue.heldCrateNames()) {
    const path = indexPath(name);
    const record = await store.read(indexKey(path));
    const file = record && decodeIndexRecord(record);
    if (file) yield { path, body: file.body };
  }
}
