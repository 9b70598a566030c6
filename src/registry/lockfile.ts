/**
 * @module
 * Reading a `Cargo.lock` (formats V1 to V4) into the crates.io packages it pins. Pure, no I/O.
 * The rules follow cargo's `EncodableResolve::into_resolve` (src/cargo/core/resolver/encode.rs).
 */
import { parse, TomlError } from 'smol-toml';
import { Errors } from '../errors.ts';
import type { CrateId } from './crate-id.ts';
import { isValidCrateName } from './crate-name.ts';
import { isValidVersion } from './version.ts';

/** A crates.io package pinned by a lockfile; `checksum` is the hex sha256 of its `.crate`. */
export interface LockedCrate extends CrateId {
  checksum?: string;
}

/** Why a locked package is not fetched from crates.io. */
export type SkipKind = 'git' | 'path' | 'other-registry';

/** A locked package the proxy does not fetch, and why. */
export interface SkippedPackage {
  name: string;
  version: string;
  kind: SkipKind;
}

/** A lockfile format, numbered as cargo's `ResolveVersion` numbers it. */
export type LockfileVersion = 1 | 2 | 3 | 4;

/** What a lockfile pins: its format, the crates.io packages, and everything else. */
export interface LockfileContents {
  version: LockfileVersion;
  registry: LockedCrate[];
  skipped: SkippedPackage[];
}

/**
 * The two source ids of crates.io: cargo's `CRATES_IO_INDEX` (with the `registry+` kind prefix)
 * and `CRATES_IO_HTTP_INDEX`. A replaced crates.io still records the first one.
 */
export const CRATES_IO_SOURCES: readonly string[] = [
  'registry+https://github.com/rust-lang/crates.io-index',
  'sparse+https://index.crates.io/',
];

type SourceKind = SkipKind | 'crates-io';

/** A `[[package]]` entry once its types are checked. */
interface LockPackage {
  name: string;
  version: string;
  source?: string;
  kind: SourceKind;
  checksum?: string;
  /** `dependencies` and `replace`, parsed: only read to tell V1 from V2. */
  refs: PackageRef[];
  label: string;
}

/** An `EncodablePackageId`: `name`, `name version` or `name version (source)`. */
interface PackageRef {
  name: string;
  version?: string;
  source?: string;
}

type ByName = Map<string, LockPackage[]>;

const SHA256_HEX = /^[0-9a-f]{64}$/;
const CHECKSUM_KEY = 'checksum ';

/**
 * Parses a `Cargo.lock`. The format is read from the content, never from a file name: a
 * `version` key means V3 or V4; without one, "we assume an older format is being parsed until
 * we see so otherwise" (cargo), and inline checksums or shortened dependency strings mean V2.
 * Only crates.io packages are listed to fetch, once each; git, path and other-registry ones are
 * reported as skipped, and `[[patch.unused]]` is ignored (cargo never downloads it). Throws `CARGO_CACHER_BAD_REQUEST` naming the package when the file is malformed.
 */
export function parseLockfile(text: string): LockfileContents {
  const doc = parseToml(text);
  const packages = readPackages(doc);
  const byName = groupByName(packages);
  let version = declaredVersion(doc.version) ?? impliedVersion(packages, byName);
  const checksums = collectChecksums(packages, readMetadata(doc.metadata), byName, version);
  // cargo: "If our lockfile only has one trailing newline, not two, *and* it only has one
  // package, then this is actually the v2 format."
  if (version === 1 && /[^\n]\n$/.test(text) && packages.length === 1) version = 2;
  return { version, ...classify(packages, checksums) };
}

function bad(message: string, cause?: unknown): Error {
  return Errors.CARGO_CACHER_BAD_REQUEST(`Cargo.lock: ${message}`, { cause });
}

function parseToml(text: string): Record<string, unknown> {
  try {
    return parse(text.replace(/^\uFEFF/, ''), { unsafeKeyBehaviour: 'throw' });
  } catch (err) {
    const where = err instanceof TomlError ? ` at line ${err.line}` : '';
    throw bad(`not valid TOML${where}`, err);
  }
}

/** `version = 3` or `4`. cargo rejects any other number; 5 is nightly-only. */
function declaredVersion(raw: unknown): 3 | 4 | undefined {
  if (raw === undefined) return undefined;
  if (raw === 3 || raw === 4) return raw;
  throw bad(`lock file version ${JSON.stringify(raw)} is not supported (expected 3 or 4)`);
}

function isTable(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}

/** `[[package]]`, with a legacy `[root]` first: cargo "treats it as another package". */
function readPackages(doc: Record<string, unknown>): LockPackage[] {
  const list = doc.package ?? [];
  if (!Array.isArray(list)) throw bad('"package" is not an array of tables');
  const all: unknown[] = doc.root === undefined ? list : [doc.root, ...list];
  return all.map((entry, index) => readPackage(entry, index + 1));
}

function readPackage(entry: unknown, position: number): LockPackage {
  if (!isTable(entry)) throw bad(`package #${position} is not a table`);
  const { name, version } = entry;
  if (typeof name !== 'string' || name === '') {
    throw bad(`package #${position} has no "name" string`);
  }
  const label = `package ${JSON.stringify(name)}`;
  if (typeof version !== 'string' || !isValidVersion(version)) {
    throw bad(`${label} has an invalid version ${JSON.stringify(version)}`);
  }
  const full = `${label} ${version}`;
  const source = optionalString(entry, 'source', full);
  const checksum = optionalString(entry, 'checksum', full);
  const deps = entry.dependencies ?? [];
  if (!Array.isArray(deps)) throw bad(`${full} has a "dependencies" that is not an array`);
  const replace = optionalString(entry, 'replace', full);
  const refs = [...deps, ...(replace === undefined ? [] : [replace])].map((ref) =>
    parsePackageRef(ref, `${full}, dependency ${JSON.stringify(ref)}`),
  );
  return { name, version, source, kind: sourceKind(source, full), checksum, refs, label: full };
}

function optionalString(
  entry: Record<string, unknown>,
  key: string,
  label: string,
): string | undefined {
  const value = entry[key];
  if (value === undefined || typeof value === 'string') return value;
  throw bad(`${label} has a "${key}" that is not a string`);
}

/** cargo's `SourceId::from_url` kinds; a path package is written without a source. */
function sourceKind(source: string | undefined, label: string): SourceKind {
  if (source === undefined || source.startsWith('path+')) return 'path';
  if (CRATES_IO_SOURCES.includes(source)) return 'crates-io';
  if (source.startsWith('registry+') || source.startsWith('sparse+')) return 'other-registry';
  if (source.startsWith('git+')) return 'git';
  throw bad(`${label} has an unsupported source protocol: ${JSON.stringify(source)}`);
}

/** cargo's `EncodablePackageId::from_str`: `splitn(3, ' ')`, the source in parentheses. */
function parsePackageRef(raw: unknown, label: string): PackageRef {
  if (typeof raw !== 'string') throw bad(`${label} is not a string`);
  const [name = '', version, ...rest] = raw.split(' ');
  if (rest.length === 0) return { name, version };
  const source = rest.join(' ');
  if (!source.startsWith('(') || !source.endsWith(')')) {
    throw bad(`${label} is not a valid package id`);
  }
  return { name, version, source: source.slice(1, -1) };
}

function groupByName(packages: LockPackage[]): ByName {
  const byName: ByName = new Map();
  for (const pkg of packages) byName.set(pkg.name, [...(byName.get(pkg.name) ?? []), pkg]);
  return byName;
}

/** Sources compare without their `#<commit>` part, as `SourceId`s do (precise is ignored). */
function sameSource(a: string | undefined, b: string): boolean {
  return a !== undefined && a.split('#')[0] === b.split('#')[0];
}

/**
 * cargo's `lookup_id`: finds the package a reference names, and says whether finding it needed
 * the shortened V2 form (a missing version, or a missing source on a non-path package).
 */
function lookup(ref: PackageRef, byName: ByName): { found?: LockPackage; short: boolean } {
  const sameName = byName.get(ref.name);
  if (sameName === undefined) return { short: false };
  const short = ref.version === undefined;
  const versions = new Set(sameName.map((pkg) => pkg.version));
  if (short && versions.size !== 1) return { short };
  const candidates = short ? sameName : sameName.filter((pkg) => pkg.version === ref.version);
  const { source } = ref;
  if (source !== undefined) {
    return { found: candidates.find((pkg) => sameSource(pkg.source, source)), short };
  }
  const paths = candidates.filter((pkg) => pkg.kind === 'path');
  if (paths.length > 0) return { found: paths.length === 1 ? paths[0] : undefined, short };
  if (candidates.length === 1) return { found: candidates[0], short: true };
  return { short };
}

/** V1 or V2 for a file without `version`: V2 writes inline checksums and short references. */
function impliedVersion(packages: LockPackage[], byName: ByName): 1 | 2 {
  if (packages.some((pkg) => pkg.checksum !== undefined)) return 2;
  const short = packages.some((pkg) => pkg.refs.some((ref) => lookup(ref, byName).short));
  return short ? 2 : 1;
}

function readMetadata(raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (!isTable(raw)) throw bad('"metadata" is not a table');
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') throw bad(`[metadata] "${key}" is not a string`);
  }
  return raw as Record<string, string>;
}

/**
 * Inline checksums, then V1's `[metadata]` ones (`"<none>"` means none). cargo: "If `checksum`
 * was listed in `[metadata]` but we were previously listed as `V2` then assume some sort of bad
 * git merge happened, so discard all checksums".
 */
function collectChecksums(
  packages: LockPackage[],
  metadata: Record<string, string>,
  byName: ByName,
  version: LockfileVersion,
): Map<LockPackage, string | undefined> {
  const checksums = new Map<LockPackage, string | undefined>();
  for (const pkg of packages) if (pkg.checksum !== undefined) checksums.set(pkg, pkg.checksum);
  let listed = 0;
  for (const [key, value] of Object.entries(metadata)) {
    if (!key.startsWith(CHECKSUM_KEY)) continue;
    listed += 1;
    const ref = parsePackageRef(key.slice(CHECKSUM_KEY.length), `[metadata] key "${key}"`);
    const { found } = lookup(ref, byName);
    if (found) checksums.set(found, value === '<none>' ? undefined : value);
  }
  if (listed > 0 && version >= 2) checksums.clear();
  return checksums;
}

/** Splits packages into crates.io ones (checked, deduplicated) and skipped ones. */
function classify(
  packages: LockPackage[],
  checksums: Map<LockPackage, string | undefined>,
): Pick<LockfileContents, 'registry' | 'skipped'> {
  const registry = new Map<string, LockedCrate>();
  const skipped = new Map<string, SkippedPackage>();
  for (const pkg of packages) {
    const { name, version, kind } = pkg;
    if (kind === 'crates-io') {
      addLocked(registry, toLocked(pkg, checksums.get(pkg)), pkg.label);
    } else if (!skipped.has(`${kind} ${name} ${version}`)) {
      skipped.set(`${kind} ${name} ${version}`, { name, version, kind });
    }
  }
  return { registry: [...registry.values()], skipped: [...skipped.values()] };
}

function toLocked(pkg: LockPackage, checksum: string | undefined): LockedCrate {
  if (!isValidCrateName(pkg.name)) throw bad(`${pkg.label} has an invalid crate name`);
  if (checksum === undefined) return { name: pkg.name, version: pkg.version };
  if (!SHA256_HEX.test(checksum)) {
    throw bad(`${pkg.label} has an invalid checksum ${JSON.stringify(checksum)}`);
  }
  return { name: pkg.name, version: pkg.version, checksum };
}

/**
 * Both crates.io source ids can pin the same version; it is one download. Names are unique on
 * crates.io ignoring case, so case is ignored here too. Two different checksums are an error.
 */
function addLocked(registry: Map<string, LockedCrate>, locked: LockedCrate, label: string): void {
  const key = `${locked.name.toLowerCase()} ${locked.version}`;
  const seen = registry.get(key);
  if (seen === undefined) {
    registry.set(key, locked);
  } else if (seen.checksum === undefined) {
    if (locked.checksum !== undefined) seen.checksum = locked.checksum;
  } else if (locked.checksum !== undefined && locked.checksum !== seen.checksum) {
    throw bad(`${label} is listed twice with different checksums`);
  }
}
