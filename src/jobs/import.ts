/**
 * @module
 * `cargo-cacher import`: adds a bundle made by `cargo-cacher export` to a store, through the
 * tracked store so the catalogue learns everything. Nothing unverified lands: every file is held
 * against the manifest's size and sha256, and every crate also against its index line's `cksum`
 * (from the bundle's index file, else the store's) on its way into the store, which publishes it
 * only when the sha256 matches. A tampered or truncated file is refused and named; the rest is
 * imported. Index files merge with the store's copy (`bundle-index-files.ts`), so no line is lost.
 *
 * The bundle is read in order, one file at a time (a tar is one stream); a small file is read
 * whole and stored while the next ones are read, a few at a time.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Catalogue } from '../cache/catalogue.ts';
import { decodeIndexRecord } from '../cache/index-record.ts';
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
import type { BlobStore } from '../storage/blob-store.ts';
import { storeImportedIndexFile } from './bundle-index-files.ts';
import { BundleProgress } from './bundle-progress.ts';
import { type BundleEntry, type OpenedBundle, openBundle } from './bundle-reader.ts';

/** Crates up to this size are read whole and stored in one write rather than streamed. */
const WHOLE_READ_BYTES = 1024 * 1024;
/** Files being stored at once while the next ones are read. */
const WRITES_AT_ONCE = 8;

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

/** Stores what was read of one file. */
type Write = () => Promise<void>;

/**
 * Reads the bundle at `path` into the store. Throws when it is not a bundle at all, and when
 * the store fails (a full disk); a damaged tar is reported and what came before the damage kept.
 */
export async function importBundle(
  deps: ImportDeps,
  path: string,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const started = Date.now();
  const bundle = await openBundle(path);
  const run = new ImportRun(deps, bundle.manifest, options.tty === true);
  try {
    await readAndStore(bundle, path, run);
  } finally {
    await bundle.close();
    run.stop();
  }
  return { ...run.finish(), durationMs: Date.now() - started };
}

/** Reads each file in order and keeps up to {@link WRITES_AT_ONCE} of them being stored. */
async function readAndStore(bundle: OpenedBundle, path: string, run: ImportRun): Promise<void> {
  const writing = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  const entries = bundle.entries()[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<BundleEntry>;
      try {
        next = await entries.next();
      } catch (err) {
        // A damaged tar: what came before the damage is imported, the rest is reported missing.
        run.refuse(path, `the bundle is damaged: ${(err as Error).message}`);
        break;
      }
      if (next.done) break;
      const write = await run.read(next.value);
      if (write === undefined) continue;
      const stored = write().catch((err: unknown) => {
        failure ??= { err };
      });
      writing.add(stored);
      void stored.then(() => writing.delete(stored));
      if (writing.size >= WRITES_AT_ONCE) await Promise.race(writing);
      if (failure) break;
    }
  } finally {
    await Promise.all(writing);
  }
  if (failure) throw failure.err;
}

/** The state of one import: the manifest's files, what became of each, the checksums seen. */
class ImportRun {
  readonly #deps: ImportDeps;
  readonly #manifest: BundleManifest;
  readonly #createdAt: number;
  /** The manifest's files; `null` once seen. */
  readonly #expected: Map<string, BundleFile | null>;
  readonly #crates: Map<string, BundleCrate>;
  /** Crates of the bundle by lowercased name, to find their lines in the bundle's index files. */
  readonly #cratesByName = new Map<string, BundleCrate[]>();
  /** `cksum` of each bundle crate from the bundle's own (verified) index file. */
  readonly #bundleChecksums = new Map<string, string>();
  /** The store's index lines of the last crate looked up there (its versions come together). */
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
    this.#expected = new Map(
      manifest.files.map((file): [string, BundleFile | null] => [file.path, file]),
    );
    this.#crates = new Map(manifest.crates.map((crate) => [crate.path, crate]));
    for (const crate of manifest.crates) {
      const name = crate.name.toLowerCase();
      const group = this.#cratesByName.get(name);
      if (group) group.push(crate);
      else this.#cratesByName.set(name, [crate]);
    }
    this.#progress = new BundleProgress('import', manifest.files.length, tty);
  }

  /**
   * Reads one file of the bundle and checks it; what is left to do is storing it (undefined
   * when it was refused, already held, or streamed into the store here already).
   */
  async read(entry: BundleEntry): Promise<Write | undefined> {
    const expected = this.#expected.get(entry.path);
    if (expected == null) {
      const twice = expected === null;
      return this.#skip(
        entry,
        twice ? 'it is in the bundle twice' : 'manifest.json does not list it',
      );
    }
    this.#expected.set(entry.path, null);
    const problem = checkEntry(entry, expected);
    if (problem !== undefined) return this.#skip(entry, problem);
    return bundlePathKind(entry.path) === 'index'
      ? this.#readIndexFile(entry, expected)
      : this.#readCrate(entry, expected);
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
    for (const [path, file] of this.#expected) {
      if (file !== null) this.refuse(path, 'missing from the bundle');
    }
    this.#expected.clear();
    return { manifest: this.#manifest, ...this.#report };
  }

  /** Refuses a file without reading it. */
  #skip(entry: BundleEntry, reason: string): undefined {
    entry.skip();
    this.refuse(entry.path, reason);
    return undefined;
  }

  async #readIndexFile(entry: BundleEntry, expected: BundleFile): Promise<Write | undefined> {
    const body = await entry.read(expected.size);
    const sha256 = createHash('sha256').update(body).digest('hex');
    if (body.length !== expected.size || sha256 !== expected.sha256) {
      this.refuse(entry.path, tamperedReason(body.length, sha256, expected));
      return undefined;
    }
    this.#noteBundleChecksums(crateNameOfIndexPath(entry.path) as string, body);
    return async () => {
      const outcome = await storeImportedIndexFile(
        this.#deps.store,
        entry.path,
        body,
        this.#createdAt,
      );
      if (outcome === 'unchanged') {
        this.#report.held++;
        this.#progress.record('held');
        return;
      }
      if (outcome === 'merged') this.#report.merged++;
      this.#report.indexFiles++;
      this.#report.bytes += body.length;
      this.#progress.record('done', body.length);
    };
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

  async #readCrate(entry: BundleEntry, expected: BundleFile): Promise<Write | undefined> {
    const crate = this.#crates.get(entry.path) as BundleCrate;
    const checksum = this.#bundleChecksums.get(entry.path) ?? (await this.#storeChecksum(crate));
    if (checksum === undefined) {
      return this.#skip(entry, `no index file lists ${crate.name} ${crate.version}`);
    }
    if (checksum !== expected.sha256) {
      const disagree = `manifest.json says sha256 ${expected.sha256}, its index line says ${checksum}`;
      return this.#skip(entry, disagree);
    }
    if (this.#deps.catalogue.get(entry.path)?.sha256 === checksum) {
      entry.skip();
      this.#report.held++;
      this.#progress.record('held');
      return undefined;
    }
    if (expected.size > WHOLE_READ_BYTES) {
      await this.#streamCrate(entry, expected, checksum);
      return undefined;
    }
    let body: Buffer;
    try {
      body = await entry.read(expected.size);
    } catch (err) {
      this.refuse(entry.path, `could not be read: ${(err as Error).message}`);
      return undefined;
    }
    if (body.length < expected.size) {
      this.refuse(entry.path, `truncated: ${body.length} of ${expected.size} bytes`);
      return undefined;
    }
    return () => this.#putCrate(entry.path, body, expected, checksum);
  }

  /** A large crate, streamed into the store as it is read. */
  async #streamCrate(entry: BundleEntry, expected: BundleFile, checksum: string): Promise<void> {
    const source = entry.stream();
    let unreadable: Error | undefined;
    source.once('error', (err: Error) => {
      unreadable = err;
    });
    try {
      await this.#putCrate(entry.path, source, expected, checksum);
    } catch (err) {
      entry.skip();
      if (unreadable === undefined) throw err;
      this.refuse(entry.path, `could not be read: ${unreadable.message}`);
    }
  }

  /** Stores a crate only if its sha256 is `checksum` (the store checks it before publishing). */
  async #putCrate(
    path: string,
    body: Buffer | Readable,
    expected: BundleFile,
    checksum: string,
  ): Promise<void> {
    try {
      await this.#deps.store.put(path, body, { expectedSha256: checksum, maxBytes: expected.size });
    } catch (err) {
      if (!isRefusal(err)) throw err;
      this.refuse(path, `tampered with: ${(err as Error).message}`);
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

/** A file whose kind or size already says it is not the one the manifest lists. */
function checkEntry(entry: BundleEntry, expected: BundleFile): string | undefined {
  if (!entry.regular) return 'not a regular file';
  if (entry.size === expected.size) return undefined;
  const what = entry.size < expected.size ? 'truncated' : 'longer than the manifest says';
  return `${what}: ${entry.size} bytes, manifest.json says ${expected.size}`;
}

/** A put refused for the bytes given (not for the store's own failure). */
function isRefusal(err: unknown): boolean {
  return (
    isCacherError(err, 'CARGO_CACHER_CHECKSUM_MISMATCH') ||
    isCacherError(err, 'CARGO_CACHER_BODY_TOO_LARGE')
  );
}

function tamperedReason(size: number, sha256: string, expected: BundleFile): string {
  if (size < expected.size) return `truncated: ${size} of ${expected.size} bytes`;
  return `tampered with: sha256 ${sha256} is not the ${expected.sha256} manifest.json lists`;
}
