/**
 * @module
 * `cargo-cacher export`: writes a bundle (a directory or a `.tar`) of chosen crates and their
 * index files, as the store holds them, with a `manifest.json` listing each file's size and
 * sha256, for carrying to an air-gapped cargo-cacher (`cargo-cacher import`). Every crate is
 * hashed as it is written and held against its index line's `cksum`: a mismatch is reported by
 * name and left out. With `--since`, files an earlier bundle carried (same path and sha256) are
 * left out too, so a weekly bundle carries only what is new.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Catalogue } from '../cache/catalogue.ts';
import { decodeIndexRecord } from '../cache/index-record.ts';
import type { AppLogger } from '../logger.ts';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  type BundleCrate,
  type BundleFile,
  type BundleManifest,
  type BundleSource,
  bundleIndexPath,
  fileIdentity,
  parseBundleManifest,
} from '../registry/bundle-manifest.ts';
import { crateKey } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { type CrateVersion, parseIndexFile } from '../registry/index-entry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { BundleProgress } from './bundle-progress.ts';
import { openBundle } from './bundle-reader.ts';
import { chooseVersions, type ExportChoice, type ExportSelection } from './bundle-selection.ts';
import { BundleStaging } from './bundle-writer.ts';
import { runPool } from './worker-pool.ts';

/** What an export reads. */
export interface ExportDeps {
  store: BlobStore;
  catalogue: Catalogue;
  log: AppLogger;
  now?: () => number;
}

/** What to export, and where. */
export interface ExportOptions extends ExportSelection {
  /** The bundle to write: `*.tar` for a tar file, else a directory. */
  out: string;
  /** Bundles already carried, or their manifests (`--since`). */
  since: readonly string[];
  /** Crates read and written at once; default 8. */
  concurrency?: number;
  /** Show a progress bar (stderr is a terminal). */
  tty?: boolean;
}

/** What an export wrote, and what it could not. */
export interface ExportReport {
  manifest: BundleManifest;
  /** One line each: `name version: why` (not held, index file missing, checksum mismatch). */
  problems: string[];
  /** Files an earlier bundle carried, left out (`--since`). */
  alreadyCarried: number;
  bytes: number;
  durationMs: number;
}

/** Crates up to this size are read whole rather than streamed. */
const WHOLE_READ_BYTES = 1024 * 1024;

/** One crate file to write: its index line (its path is its store key). */
type CrateTask = CrateVersion;

/** Writes the bundle; throws (leaving nothing under `out`) when the bundle cannot be written. */
export async function exportBundle(
  deps: ExportDeps,
  options: ExportOptions,
): Promise<ExportReport> {
  const now = deps.now ?? Date.now;
  const started = now();
  const previous = await readPreviousManifests(options.since);
  const staging = await BundleStaging.create(options.out);
  try {
    const { plan, problems } = await planExport(deps, options, staging, previous.carried);
    const progress = new BundleProgress('export', plan.crates.length, options.tty === true);
    const written = await writeCrates(
      deps,
      staging,
      plan.crates,
      problems,
      progress,
      options.concurrency,
    ).finally(() => progress.stop());
    // Index files first, then crates, each in path order: the order the tar is written in.
    const files = [...plan.indexFiles.sort(byPath), ...written.files.sort(byPath)];
    const manifest: BundleManifest = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      createdAt: new Date(started).toISOString(),
      source: await describeSource(deps.store),
      ...(previous.createdAt !== undefined && { since: previous.createdAt }),
      crates: written.crates.sort(byPath),
      files,
    };
    await staging.finish(manifest);
    return {
      manifest,
      problems,
      alreadyCarried: plan.alreadyCarried,
      bytes: files.reduce((sum, file) => sum + file.size, 0),
      durationMs: now() - started,
    };
  } catch (err) {
    await staging.discard();
    throw err;
  }
}

/**
 * Chooses the versions and writes their index files: what is left is the crates to copy (the
 * choices themselves are let go, a bundle of everything holds a lot of them).
 */
async function planExport(
  deps: ExportDeps,
  options: ExportOptions,
  staging: BundleStaging,
  carried: ReadonlySet<string>,
) {
  const chosen = await chooseVersions(options, {
    store: deps.store,
    heldCrates: () => heldCrates(deps.catalogue),
  });
  const problems = [...chosen.problems];
  const plan = await writeIndexFiles(deps.store, staging, chosen.choices, carried, problems);
  return { plan, problems };
}

/** What the earlier bundles carried, and the newest one's time. */
async function readPreviousManifests(
  paths: readonly string[],
): Promise<{ carried: Set<string>; createdAt: string | undefined }> {
  const carried = new Set<string>();
  let createdAt: string | undefined;
  for (const path of paths) {
    const manifest = await readPreviousManifest(path);
    for (const file of manifest.files) carried.add(fileIdentity(file));
    if (createdAt === undefined || manifest.createdAt > createdAt) createdAt = manifest.createdAt;
  }
  return { carried, createdAt };
}

/** The manifest of an earlier bundle: given as the bundle (directory or `.tar`) or its manifest. */
async function readPreviousManifest(path: string): Promise<BundleManifest> {
  const isDirectory = (await stat(path)).isDirectory();
  if (!isDirectory && !path.endsWith('.tar')) {
    return parseBundleManifest(await readFile(path, 'utf8'), path);
  }
  const bundle = await openBundle(path);
  await bundle.close();
  return bundle.manifest;
}

/** Every crate row of the catalogue, a page at a time. */
function* heldCrates(catalogue: Catalogue): Generator<{ name: string; version: string }> {
  let after = 'crates/';
  for (;;) {
    const page = catalogue.rowsBetween(after, 'crates0');
    for (const row of page) {
      if (row.name !== null && row.version !== null) yield { name: row.name, version: row.version };
    }
    const last = page.at(-1);
    if (last === undefined) return;
    after = last.key;
  }
}

/**
 * Writes the index file of every chosen crate (unless already carried) and finds each chosen
 * version's line in it: the crate files to write next.
 */
async function writeIndexFiles(
  store: BlobStore,
  staging: BundleStaging,
  choices: readonly ExportChoice[],
  carried: ReadonlySet<string>,
  problems: string[],
): Promise<{ indexFiles: BundleFile[]; crates: CrateTask[]; alreadyCarried: number }> {
  const indexFiles: BundleFile[] = [];
  const crates: CrateTask[] = [];
  let alreadyCarried = 0;
  for (const [name, versions] of groupByName(choices)) {
    const record = await store.read(bundleIndexPath(name));
    const body = record && decodeIndexRecord(record)?.body;
    if (body === undefined) {
      for (const choice of versions) problems.push(`${label(choice)}: its index file is not held`);
      continue;
    }
    const file = describeFile(bundleIndexPath(name), body);
    if (carried.has(fileIdentity(file))) {
      alreadyCarried++;
    } else {
      await staging.writeFile(file.path, body);
      indexFiles.push(file);
    }
    const lines = new Map(parseIndexFile(body).map((line) => [line.version, line]));
    for (const choice of versions) {
      const line = lines.get(choice.version);
      if (line === undefined) {
        problems.push(`${label(choice)}: the held index file does not list it`);
        continue;
      }
      const disagreement = lockDisagreement(choice, line);
      if (disagreement !== undefined) {
        problems.push(disagreement);
        continue;
      }
      const path = crateKey(line);
      if (carried.has(fileIdentity({ path, sha256: line.checksum }))) alreadyCarried++;
      else crates.push(line);
    }
  }
  return { indexFiles, crates, alreadyCarried };
}

/** A lock file checksum that is not the index's, as a problem line. */
function lockDisagreement(choice: ExportChoice, line: CrateVersion): string | undefined {
  const wrong = choice.lockChecksums.find((lock) => lock.checksum !== line.checksum);
  if (wrong === undefined) return undefined;
  return `${label(choice)}: ${wrong.file} records sha256 ${wrong.checksum}, the held index says ${line.checksum}; left out`;
}

/** Streams each crate from the store into the bundle, verified; what failed is a problem. */
async function writeCrates(
  deps: Pick<ExportDeps, 'store' | 'catalogue'>,
  staging: BundleStaging,
  tasks: readonly CrateTask[],
  problems: string[],
  progress: BundleProgress,
  concurrency = 8,
): Promise<{ crates: BundleCrate[]; files: BundleFile[] }> {
  const written = { crates: [] as BundleCrate[], files: [] as BundleFile[] };
  const stop = new AbortController();
  let fatal: unknown;
  const copy = async (line: CrateTask) => {
    const path = crateKey(line);
    const result = await copyCrate(deps, staging, line, path).catch((err: unknown) => {
      if (!isFatalWriteError(err)) return `could not be copied: ${(err as Error).message}`;
      fatal ??= err;
      stop.abort();
      return 'stopped';
    });
    if (typeof result === 'string') {
      problems.push(`${line.name} ${line.version}: ${result}`);
      progress.record('failed');
      return;
    }
    written.crates.push({ name: line.name, version: line.version, path });
    written.files.push(result);
    progress.record('done', result.size);
  };
  await runPool(tasks, concurrency, copy, stop.signal);
  if (fatal !== undefined) throw fatal;
  return written;
}

/** Copies one crate, verified: its file, or why it was left out. */
async function copyCrate(
  { store, catalogue }: Pick<ExportDeps, 'store' | 'catalogue'>,
  staging: BundleStaging,
  line: CrateVersion,
  path: string,
): Promise<BundleFile | string> {
  const size = catalogue.sizeOf(path);
  if (size !== undefined && size <= WHOLE_READ_BYTES) {
    // Most crates are small: one read and one write, where a stream's machinery cost more
    // than the bytes (and allocated a 64 kB buffer for each).
    const body = await store.read(path);
    if (body === undefined) return 'not held';
    const file = describeFile(path, body);
    if (file.sha256 !== line.checksum) return mismatch(file.sha256, body.length, line);
    await staging.writeFile(path, body);
    return file;
  }
  const opened = await store.open(path);
  if (opened === undefined) return 'not held';
  const result = await staging.writeVerified(path, opened.stream, line.checksum);
  return result.ok ? result.file : mismatch(result.sha256, result.size, line);
}

function mismatch(sha256: string, size: number, line: CrateVersion): string {
  return `sha256 ${sha256} (${size} bytes), its index line says ${line.checksum}; left out`;
}

/** Errors of the bundle's own disk, which no other crate would escape either. */
function isFatalWriteError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS';
}

function describeFile(path: string, body: Buffer): BundleFile {
  return { path, size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

/** The storage exported from, and the upstream its `config.json` names when held. */
async function describeSource(store: BlobStore): Promise<BundleSource> {
  const record = await store.read('index/config.json');
  const body = record && decodeIndexRecord(record)?.body;
  const source: BundleSource = { storage: store.location };
  if (body === undefined) return source;
  try {
    const config = JSON.parse(body.toString('utf8')) as { api?: unknown; dl?: unknown };
    if (typeof config.api === 'string') source.upstream = config.api;
    if (typeof config.dl === 'string') source.dl = config.dl;
  } catch {
    // An unreadable config.json says nothing about the upstream.
  }
  return source;
}

function groupByName(choices: readonly ExportChoice[]): Map<string, ExportChoice[]> {
  const groups = new Map<string, ExportChoice[]>();
  for (const choice of choices) {
    const name = choice.name.toLowerCase();
    const group = groups.get(name);
    if (group) group.push(choice);
    else groups.set(name, [choice]);
  }
  return new Map([...groups].sort(([a], [b]) => (indexPath(a) < indexPath(b) ? -1 : 1)));
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function label(choice: ExportChoice): string {
  return `${choice.name} ${choice.version}`;
}
