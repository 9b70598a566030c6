/**
 * @module
 * The views of the index files applied to the served git index (the supply-chain policy, the
 * index of what is held), one overlay at a time.
 */
import type { FileFilter } from './filtered-tree.ts';

/** What an overlay is built for. */
export interface OverlayState {
  /** False with `--offline`, and while refreshes fail (the last good index is served). */
  upstreamReachable: boolean;
}

/** A filter for one overlay, and when its answer changes by itself (a version comes of age). */
export interface OverlayFilter {
  filter: FileFilter;
  /** Known after the overlay was built: the earliest time a withheld version comes of age. */
  changesAt(): number | undefined;
}

/** The filters applied one after the other (a removed file stays removed); none when empty. */
export function chainOverlayFilters(
  filters: readonly (OverlayFilter | undefined)[],
): OverlayFilter | undefined {
  const present = filters.filter((filter): filter is OverlayFilter => filter !== undefined);
  if (present.length <= 1) return present[0];
  return {
    filter(path, body) {
      let current = body;
      let changed = false;
      for (const { filter } of present) {
        const next = filter(path, current);
        if (next === null) return null;
        if (next !== undefined) {
          current = next;
          changed = true;
        }
      }
      return changed ? current : undefined;
    },
    changesAt() {
      const times = present.map((filter) => filter.changesAt()).filter((at) => at !== undefined);
      return times.length > 0 ? Math.min(...times) : undefined;
    },
  };
}
