/**
 * @module
 * The `manifest.json` of a bundle (`cargo-cacher export` / `import`): what the bundle holds, each
 * file with its size and sha256, when it was made and from where. Bundles use the store's own
 * keys as paths (`crates/…` and `index/<path>`), so every path is checked here to be exactly the
 * key a valid crate name and version give: nothing in a bundle can name anything else. Pure, no
 * I/O.
 */
import { Errors } from '../errors.ts';
import { crateKey } from './crate-id.ts';
import { crateNameFromIndexPath, indexPath, isValidCrateName } from './crate-name.ts';
import { isValidVersion } from './version.ts';

/** The name of the manifest inside a bundle. */
export const MANIFEST_FILE = 'manifest.json';
/** The manifest's `format`, so a stray JSON file is not taken for one. */
export const BUNDLE_FORMAT = 'cargo-cacher-bundle';
/** The manifest format version this code writes and reads. */
export const BUNDLE_VERSION = 1;

/** One file of a bundle (the manifest itself is not listed). */
export interface BundleFile {
  /** The store key: `crates/…/{name}-{version}.crate` or `index/{ab}/{cd}/{name}`. */
  path: string;
  size: number;
  /** Hex sha256 of the file's bytes. */
  sha256: string;
}

/** One crate version a bundle carries. */
export interface BundleCrate {
  /** The name as its index line spells it (original case). */
  name: string;
  version: string;
  /** Its file's path, one of the manifest's `files`. */
  path: string;
}

/** Where a bundle was made. */
export interface BundleSource {
  /** The storage it was exported from (a directory or `s3://bucket/prefix`). */
  storage: string;
  /** The registry API of the upstream the store cached, when its `config.json` was held. */
  upstream?: string;
  /** The crate download template of that upstream (`dl` of its `config.json`). */
  dl?: string;
}

/** A bundle's manifest. */
export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  /** When the bundle was made (ISO 8601); an import treats its index files as checked then. */
  createdAt: string;
  source: BundleSource;
  /** With `--since`: the `createdAt` of the newest manifest the bundle adds to. */
  since?: string;
  crates: BundleCrate[];
  files: BundleFile[];
}

/** What a bundle path holds. */
export type BundlePathKind = 'crate' | 'index';

const SHA256_HEX = /^[0-9a-f]{64}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;

/** The bundle path of a crate's index file: `index/` and cargo's index path. */
export function bundleIndexPath(name: string): string {
  return `index/${indexPath(name)}`;
}

/** The crate name of a bundle index path (`index/se/rd/serde`), or `undefined`. */
export function crateNameOfIndexPath(path: string): string | undefined {
  return path.startsWith('index/') ? crateNameFromIndexPath(path.slice(6)) : undefined;
}

/** The kind of a path listed in a manifest (which {@link parseBundleManifest} has checked). */
export function bundlePathKind(path: string): BundlePathKind {
  return path.startsWith('crates/') ? 'crate' : 'index';
}

/** `path\0sha256`: what `--since` compares, so a changed index file is carried again. */
export function fileIdentity(file: Pick<BundleFile, 'path' | 'sha256'>): string {
  return `${file.path}\0${file.sha256}`;
}

/** Serialises a manifest: one file or crate per line, so a bundle can be read with `less`. */
export function encodeBundleManifest(manifest: BundleManifest): string {
  return [...encodeBundleManifestParts(manifest)].join('');
}

/**
 * {@link encodeBundleManifest} in parts of about `partChars` characters, so a manifest of a
 * million files is written without ever being one string.
 */
export function* encodeBundleManifestParts(
  manifest: BundleManifest,
  partChars = 64 * 1024,
): Generator<string> {
  const { crates, files, ...head } = manifest;
  let part = '{\n';
  for (const [key, value] of Object.entries(head)) {
    part += ` ${JSON.stringify(key)}: ${JSON.stringify(value)},\n`;
  }
  for (const [key, items] of [
    ['crates', crates],
    ['files', files],
  ] as const) {
    part += ` "${key}": [`;
    for (let i = 0; i < items.length; i++) {
      part += `${i === 0 ? '\n' : ',\n'}  ${JSON.stringify(items[i])}`;
      if (part.length >= partChars) {
        yield part;
        part = '';
      }
    }
    part += items.length === 0 ? ']' : '\n ]';
    part += key === 'crates' ? ',\n' : '\n}\n';
  }
  yield part;
}

/**
 * Parses and checks a manifest. Throws `CARGO_CACHER_BAD_REQUEST` naming the first problem
 * (`manifest.json: files[3].sha256 is not a hex sha256`), so a damaged or foreign file is refused
 * before anything is imported.
 */
export function parseBundleManifest(text: string, where = MANIFEST_FILE): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`${where}: not JSON (${(err as Error).message})`);
  }
  try {
    return checkManifest(raw);
  } catch (err) {
    if (err instanceof ManifestProblem) {
      throw Errors.CARGO_CACHER_BAD_REQUEST(`${where}: ${err.message}`);
    }
    throw err;
  }
}

class ManifestProblem extends Error {}

function problem(message: string): never {
  throw new ManifestProblem(message);
}

function checkManifest(raw: unknown): BundleManifest {
  const doc = asObject(raw, 'the manifest');
  if (doc.format !== BUNDLE_FORMAT)
    problem(`format is not "${BUNDLE_FORMAT}": not a bundle manifest`);
  if (doc.version !== BUNDLE_VERSION) {
    problem(
      `version ${JSON.stringify(doc.version)} is not supported (this cargo-cacher reads ${BUNDLE_VERSION})`,
    );
  }
  const files = asArray(doc.files, 'files').map((file, i) => checkFile(file, `files[${i}]`));
  const crates = asArray(doc.crates, 'crates').map((crate, i) => checkCrate(crate, `crates[${i}]`));
  checkConsistent(files, crates);
  return {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    createdAt: checkDate(doc.createdAt, 'createdAt'),
    source: checkSource(doc.source),
    ...(doc.since !== undefined && { since: checkDate(doc.since, 'since') }),
    crates,
    files,
  };
}

function checkFile(raw: unknown, where: string): BundleFile {
  const file = asObject(raw, where);
  const path = asString(file.path, `${where}.path`);
  if (!isCratePathShape(path) && crateNameOfIndexPath(path) === undefined) {
    problem(`${where}.path ${JSON.stringify(path)} is neither a crate nor an index file path`);
  }
  const { size, sha256 } = file;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    problem(`${where}.size is not a byte count`);
  }
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    problem(`${where}.sha256 is not a hex sha256`);
  }
  // The parsed object itself, checked: a manifest of a million files is not copied.
  return file as unknown as BundleFile;
}

function checkCrate(raw: unknown, where: string): BundleCrate {
  const crate = asObject(raw, where);
  const name = asString(crate.name, `${where}.name`);
  const version = asString(crate.version, `${where}.version`);
  const path = asString(crate.path, `${where}.path`);
  if (!isValidCrateName(name)) problem(`${where}.name ${JSON.stringify(name)} is not a crate name`);
  if (!isValidVersion(version))
    problem(`${where}.version ${JSON.stringify(version)} is not a version`);
  if (path !== crateKey({ name, version })) {
    problem(`${where}.path is not the path of ${name} ${version} (${crateKey({ name, version })})`);
  }
  return crate as unknown as BundleCrate;
}

/** Every path listed once; every crate file named by exactly one crate, and the reverse. */
function checkConsistent(files: readonly BundleFile[], crates: readonly BundleCrate[]): void {
  const paths = new Set<string>();
  for (const file of files) {
    if (paths.has(file.path)) problem(`${file.path} is listed twice in files`);
    paths.add(file.path);
  }
  const named = new Set<string>();
  for (const crate of crates) {
    if (named.has(crate.path)) problem(`${crate.name} ${crate.version} is listed twice in crates`);
    if (!paths.has(crate.path)) problem(`${crate.path} of crates is not in files`);
    named.add(crate.path);
  }
  for (const path of paths) {
    if (bundlePathKind(path) === 'crate' && !named.has(path)) {
      problem(`${path} of files is not in crates (its name and version)`);
    }
  }
}

function checkSource(raw: unknown): BundleSource {
  const source = asObject(raw, 'source');
  const storage = asString(source.storage, 'source.storage');
  const optional = (key: 'upstream' | 'dl') =>
    source[key] === undefined ? {} : { [key]: asString(source[key], `source.${key}`) };
  return { storage, ...optional('upstream'), ...optional('dl') };
}

function checkDate(raw: unknown, where: string): string {
  const text = asString(raw, where);
  if (!ISO_DATE.test(text) || !Number.isFinite(Date.parse(text))) {
    problem(`${where} ${JSON.stringify(text)} is not an ISO 8601 UTC time`);
  }
  return text;
}

/** The shape of a crate path; the crate entry naming it checks it is exactly its key. */
function isCratePathShape(path: string): boolean {
  return /^crates\/[^/]+(?:\/[^/]+){2,3}\.crate$/.test(path);
}

function asObject(raw: unknown, where: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    problem(`${where} is not an object`);
  return raw as Record<string, unknown>;
}

function asArray(raw: unknown, where: string): unknown[] {
  if (!Array.isArray(raw)) problem(`${where} is not a list`);
  return raw;
}

function asString(raw: unknown, where: string): string {
  if (typeof raw !== 'string') problem(`${where} is not a string`);
  return raw;
}
