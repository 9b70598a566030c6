/**
 * @module
 * What `cargo-cacher export` carries: the registry packages of `--lock` files, the roots and
 * closure of `--mirror-filter` files, and with `--all` every crate the catalogue holds; the union
 * of all of them. The filters read only the store's own index files, never upstream: a bundle
 * carries what is held.
 */
import { decodeIndexRecord } from '../cache/index-record.ts';
import { bundleIndexPath } from '../registry/bundle-manifest.ts';
import { crateLabel } from '../registry/crate-id.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { selectFromFilters } from './mirror-selection.ts';
import { readPrefetchPaths } from './prefetch-input.ts';

/** One version to export. */
export interface ExportChoice {
  /** As the selection spelt it; the index line gives the case written to the bundle. */
  name: string;
  version: string;
  /** Checksums lock files recorded for it, each with the file (held against the index). */
  lockChecksums: { checksum: string; file: string }[];
}

/** What the selection flags ask for. */
export interface ExportSelection {
  locks: readonly string[];
  filters: readonly string[];
  /** With `filters`: the newest `keep` matching versions of each root. */
  keep: number;
  all: boolean;
}

/** Where the selection reads from. */
export interface SelectionSources {
  store: BlobStore;
  /** Every crate held (`--all`), as the catalogue lists them. */
  heldCrates(): Iterable<{ name: string; version: string }>;
}

/** The versions chosen (deduplicated), and what could not be chosen. */
export interface ChosenVersions {
  choices: ExportChoice[];
  problems: string[];
}

/** Runs every selection given and merges them. */
export async function chooseVersions(
  selection: ExportSelection,
  sources: SelectionSources,
): Promise<ChosenVersions> {
  const chosen = new Map<string, ExportChoice>();
  const problems: string[] = [];
  const add = (name: string, version: string, lock?: { checksum: string; file: string }) => {
    const label = crateLabel({ name, version });
    const choice = chosen.get(label) ?? { name, version, lockChecksums: [] };
    if (lock) choice.lockChecksums.push(lock);
    chosen.set(label, choice);
  };
  for (const file of selection.locks) {
    const request = await readPrefetchPaths([file]);
    for (const pkg of request.crates) {
      add(
        pkg.name,
        pkg.version,
        pkg.checksum === undefined ? undefined : { checksum: pkg.checksum, file },
      );
    }
  }
  if (selection.filters.length > 0) {
    const filtered = await selectFromFilters(selection.filters, {
      keep: selection.keep,
      readIndex: (name) => readHeldIndexBody(sources.store, name),
    });
    for (const version of filtered.versions) add(version.name, version.version);
    problems.push(...filtered.problems);
  }
  if (selection.all) {
    for (const held of sources.heldCrates()) add(held.name, held.version);
  }
  return { choices: [...chosen.values()], problems };
}

/** The body of the index file the store holds for `name` (without its record line). */
export async function readHeldIndexBody(
  store: BlobStore,
  name: string,
): Promise<Buffer | undefined> {
  const record = await store.read(bundleIndexPath(name));
  return record === undefined ? undefined : decodeIndexRecord(record)?.body;
}
