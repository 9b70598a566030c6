/**
 * @module
 * Pinned versions: everything named by `-f` and `--pin` files (same formats as prefetch), which
 * expiration never removes.
 */
import { crateLabel } from '../registry/crate-id.ts';
import { readPrefetchPaths } from './prefetch-input.ts';

/** Reads pin files into `name@version` labels. */
export async function readPins(paths: string[]): Promise<Set<string>> {
  if (paths.length === 0) return new Set();
  const { crates } = await readPrefetchPaths(paths);
  return new Set(crates.map(crateLabel));
}
