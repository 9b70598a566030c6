/**
 * @module
 * `cargo-cacher import`: adds a bundle made by `cargo-cacher export` to a store, through the
 * tracked store so the catalogue learns everything. Nothing unverified lands: every file is held
 * against the manifest's size and sha256, and every crate also against its index line's `cksum`
 * (from the bundle's index file, else the store's) while it streams into the store, which
 * publishes it only when the sha256 matches. A tampered or truncated file is refused and named;
 * the rest is imported. Index files merge with the store's copy (`registry/index-merge.ts`), so
 * no line is lost; the merged file counts as checked at the bundle's `createdAt`.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Catalogue } from '../cache/catalogue.ts';
import {
  createIndexFile,
  decodeIndexRecord,
  encodeIndexRecord,
  type IndexFile,
} from '../cache/index-record.ts';
import { isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import {
  type BundleCrate,
  type BundleFile,
  type BundleManifest,
  bundleIndexPath,
  bundlePathKind,
  crateNameOfIndexPath,
} from '../registry/bundle-manifest.ts';
import { parseIndexFile } from '../registry/index-entry.ts';
import { mergeIndexFiles } from '../registry/index-merge.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { BundleProgress } from './bundle-progress.ts';
import { type BundleEntry, openBundle } from './bundle-reader.ts';

/** What an import writes to. */
export interface ImportDeps {
  /** The tracked store: every put is recorded in the catalogue. */
  store: BlobStore;
  catalogue: Catalogue;
  log: AppLogger;
}

/** Options of {@link importBundle}. */
export interface ImportOptions {
  /** Show a progress bar (stderr is a terminal). */
  tty?: boolean;
}

/** A file the import would not take, and why. */
export interface Refusal {
  path: string;
  reason: string;
}

/** What an import did. */
export interface ImportReport {
  manifest: BundleManifest;
  crates: number;
  indexFiles: number;
  /** Index files merged with a copy the store already had, lines of both kept. */
  merged: number;
  /** Files the store already held as they are (crates with that sha256, index files unchanged). */
  held: number;
  refused: Refusal[];
  bytes: number;
  durationMs: number;
}

/** Reads the bundle at `path` into the store. Throws only when it is not a bundle at all. */
export async function importBundle(
  deps: ImportDeps,
  path: string,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const started = Date.now();
  const bundle = await openBundle(path);
  const run = new ImportRun(deps, bundle.manifest, options.tty === true);
  try {
    for await (const entry of bundle.entries()) await run.take(entry);
  } catch (err) {
    // A damaged tar: what came before the damage is imported, the rest is reported missing.
    run.refuse(path, `the bundle is damaged: ${(err as Error).message}`);
  } finally {
    await bundle.close();
    run.stop();
  }
  return { ...run.finish(), durationMs: Date.now() - started };
}

/** The state of one import: the manifest's files, what became of each, the checksums seen. */
class ImportRun {
  readonly #deps: ImportDeps;
  readonly #manifest: BundleManifest;
  readonly #createdAt: number;
  /** Manifest files not seen yet. */
  readonly #expected: Map<string, BundleFile>;
  readonly #crates: Map<string, BundleCrate>;
  /** Crates of the bundle by lowercased name, to find their lines in the bundle's index files. */
  readonly #cratesByName = new Map<string, BundleCrate[]>();
  /** `cksum` of each bundle crate from the bundle's own (verified) index file. */
  readonly #bundleChecksums = new Map<string, string>();
  /** The store's index file of the last crate looked up there (versions of a crate come together). */
  #storeLines: { name: string; checksums: Map<string, string> } | undefined;
  readonly #progress: BundleProgress;
  readonly #report = {
    crates: 0,
    indexFiles: 0,
    merged: 0,
    held: 0,
    bytes: 0,
    refused: [] as Refusal[],
  };

  constructor(deps: ImportDeps, manifest: BundleManifest, tty: boolean) {
    this.#deps = deps;
    this.#manifest = manifest;
    this.#createdAt = Date.parse(manifest.createdAt);
    this.#expected = new Map(manifest.files.map((file) => [file.path, file]));
    this.#crates = new Map(manifest.crates.map((crate) => [crate.path, crate]));
    for (const crate of manifest.crates) {
      const name = crate.name.toLowerCase();
      const group = this.#cratesByName.get(name);
      if (group) group.push(crate);
      else this.#cratesByName.set(name, [crate]);
    }
    this.#progress = new BundleProgress('import', manifest.files.length, tty);
  }

  /** Takes one file of the bundle. */
  async take(entry: BundleEntry): Promise<void> {
    const expected = this.#expected.get(entry.path);
    if (expected === undefined) {
      entry.skip();
      const seen = this.#crates.has(entry.path) || bundlePathKind(entry.path) === 'index';
      this.refuse(
        entry.path,
        seen ? 'it is in the bundle twice' : 'manifest.json does not list it',
      );
      return;
    }
    this.#expected.delete(entry.path);
    const problem = this.#checkEntry(entry, expected);
    if (problem !== undefined) {
      entry.skip();
      this.refuse(entry.path, problem);
      return;
    }
    if (bundlePathKind(entry.path) === 'index') await this.#takeIndexFile(entry, expected);
    else await this.#takeCrate(entry, expected);
  }

  refuse(path: string, reason: string): void {
    this.#report.refused.push({ path, reason });
    this.#progress.record('failed');
  }

  stop(): void {
    this.#progress.stop();
  }

  /** The report; files the manifest lists that never came are refused as missing. */
  finish(): Omit<ImportReport, 'durationMs'> {
    for (const path of this.#expected.keys()) this.refuse(path, 'missing from the bundle');
    this.#expected.clear();
    return { manifest: this.#manifest, ...this.#report };
  }

  #checkEntry(entry: BundleEntry, expected: BundleFile): string | undefined {
    if (!entry.regular) return 'not a regular file';
    if (entry.size !== expected.size) {
      const what = entry.size < expected.size ? 'truncated' : 'longer than the manifest says';
      return `${what}: ${entry.size} bytes, manifest.json says ${expected.size}`;
    }
    return undefined;
  }

  async #takeIndexFile(entry: BundleEntry, expected: BundleFile): Promise<void> {
    const body = await readAll(entry.stream(), expected.size);
    const sha256 = createHash('sha256').update(body).digest('hex');
    if (body.length !== expected.size || sha256 !== expected.sha256) {
      this.refuse(entry.path, tamperedReason(body.length, sha256, expected));
      return;
    }
    const name = crateNameOfIndexPath(entry.path) as string;
    this.#noteBundleChecksums(name, body);
    const changed = await this.#mergeIndexFile(entry.path, body);
    if (changed === 'unchanged') {
      this.#report.held++;
      this.#progress.record('held');
      return;
    }
    if (changed === 'merged') this.#report.merged++;
    this.#report.indexFiles++;
    this.#report.bytes += body.length;
    this.#progress.record('done', body.length);
  }

  /** Remembers the cksum the bundle's index file gives each crate of the bundle. */
  #noteBundleChecksums(name: string, body: Buffer): void {
    const crates = this.#cratesByName.get(name);
    if (crates === undefined) return;
    const lines = new Map(parseIndexFile(body).map((line) => [line.version, line.checksum]));
    for (const crate of crates) {
      const checksum = lines.get(crate.version);
      if (checksum !== undefined) this.#bundleChecksums.set(crate.path, checksum);
    }
  }

  /**
   * Merges the bundle's index file with the store's copy and stores the result: the newer copy
   * (the bundle's `createdAt` against the store's `checkedAt`) wins for versions both list.
   */
  async #mergeIndexFile(path: string, body: Buffer): Promise<'unchanged' | 'merged' | 'new'> {
    const { store } = this.#deps;
    const record = await store.read(path);
    const held = record && decodeIndexRecord(record);
    if (!held) {
      await store.put(path, encodeIndexRecord(createIndexFile(body, {}, this.#createdAt)));
      return 'new';
    }
    const bundleIsNewer = this.#createdAt > held.checkedAt;
    const merged = bundleIsNewer
      ? mergeIndexFiles(body, held.body)
      : mergeIndexFiles(held.body, body);
    if (merged.body.equals(held.body) && !bundleIsNewer) return 'unchanged';
    await store.put(path, encodeIndexRecord(mergedRecord(held, merged.body, this.#createdAt)));
    return merged.body.equals(held.body) ? 'unchanged' : 'merged';
  }

  async #takeCrate(entry: BundleEntry, expected: BundleFile): Promise<void> {
    const crate = this.#crates.get(entry.path) as BundleCrate;
    const checksum = this.#bundleChecksums.get(entry.path) ?? (await this.#storeChecksum(crate));
    if (checksum === undefined) {
      entry.skip();
      this.refuse(entry.path, `no index file lists ${crate.name} ${crate.version}`);
      return;
    }
    if (checksum !== expected.sha256) {
      entry.skip();
      this.refuse(
        entry.path,
        `manifest.json says sha256 ${expected.sha256}, its index line says ${checksum}`,
      );
      return;
    }
    if (this.#deps.catalogue.get(entry.path)?.sha256 === checksum) {
      entry.skip();
      this.#report.held++;
      this.#progress.record('held');
      return;
    }
    const source = entry.stream();
    let unreadable: Error | undefined;
    source.once('error', (err: Error) => {
      unreadable = err;
    });
    try {
      await this.#deps.store.put(entry.path, source, {
        expectedSha256: checksum,
        maxBytes: expected.size,
      });
    } catch (err) {
      entry.skip();
      if (unreadable !== undefined) {
        this.refuse(entry.path, `could not be read: ${unreadable.message}`);
        return;
      }
      if (
        !isCacherError(err, 'CARGO_CACHER_CHECKSUM_MISMATCH') &&
        !isCacherError(err, 'CARGO_CACHER_BODY_TOO_LARGE')
      ) {
        throw err;
      }
      this.refuse(entry.path, `tampered with: ${err.message}`);
      return;
    }
    this.#report.crates++;
    this.#report.bytes += expected.size;
    this.#progress.record('done', expected.size);
  }

  /** The cksum the store's own index file gives a crate (a bundle made `--since` may not carry it). */
  async #storeChecksum(crate: BundleCrate): Promise<string | undefined> {
    const name = crate.name.toLowerCase();
    if (this.#storeLines?.name !== name) {
      const record = await this.#deps.store.read(bundleIndexPath(name));
      const body = record && decodeIndexRecord(record)?.body;
      const lines = body ? parseIndexFile(body) : [];
      this.#storeLines = {
        name,
        checksums: new Map(lines.map((line) => [line.version, line.checksum])),
      };
    }
    return this.#storeLines.checksums.get(crate.version);
  }
}

/**
 * The record of a merged index file: checked at the later of the two times. Upstream's
 * validators stay only while the body is upstream's own, so a later revalidation never renews
 * bytes upstream did not send.
 */
function mergedRecord(held: IndexFile, body: Buffer, bundleCreatedAt: number): IndexFile {
  const checkedAt = Math.max(held.checkedAt, bundleCreatedAt);
  if (body.equals(held.body)) return { ...held, checkedAt };
  return createIndexFile(body, {}, checkedAt);
}

function tamperedReason(size: number, sha256: string, expected: BundleFile): string {
  if (size < expected.size) return `truncated: ${size} of ${expected.size} bytes`;
  return `tampered with: sha256 ${sha256} is not the ${expected.sha256} manifest.json lists`;
}

/** Reads a stream whole, up to `limit` bytes and one more (so a longer one is seen longer). */
async function readAll(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > limit) break;
  }
  return Buffer.concat(chunks);
}
