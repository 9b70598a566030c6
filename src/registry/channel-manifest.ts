/**
 * @module
 * Reading a v2 channel manifest (`channel-rust-stable.toml`): every archive it names with its
 * sha256 (by dist path, the way requests arrive), its profiles and renames, and which archives a
 * profile needs for a set of targets (the mirror's selection). Pure: no I/O. Manifests are never
 * rewritten: their bytes are what their `.sha256` covers.
 */
import { parse } from 'smol-toml';
import { Errors } from '../errors.ts';
import { archivePathOfUrl } from './rustup-paths.ts';

/** One package built for one target. */
export interface PackageTarget {
  available: boolean;
  url?: string;
  hash?: string;
  xzUrl?: string;
  xzHash?: string;
}

/** What cargo-cacher reads of a manifest. */
export interface ChannelManifest {
  date: string;
  /** `pkg.rust.version`, e.g. `1.99.0 (abcdef 2026-11-26)`, when present. */
  rustVersion: string | undefined;
  /** Every archive named (`dist/2026-11-26/rustc-….tar.xz`) → its sha256 (lower-case hex). */
  hashes: Map<string, string>;
  /** Profile name → component names. */
  profiles: Record<string, string[]>;
  /** Old component name → new one. */
  renames: Record<string, string>;
  /** Package → target (`*` for target-independent packages) → its build. */
  packages: Map<string, Map<string, PackageTarget>>;
}

/** An archive to fetch, with the hash it must have. */
export interface ArchiveRef {
  path: string;
  sha256: string;
}

/** Parses a manifest; one that is not a v2 manifest is `CARGO_CACHER_UPSTREAM_INVALID`. */
export function parseChannelManifest(text: Buffer | string): ChannelManifest {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text.toString()) as Record<string, unknown>;
  } catch (cause) {
    throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
      `channel manifest is not TOML: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (doc['manifest-version'] !== '2' || typeof doc.date !== 'string') {
    throw Errors.CARGO_CACHER_UPSTREAM_INVALID('not a v2 channel manifest');
  }
  const packages = readPackages(doc.pkg);
  const rust = (doc.pkg as Record<string, { version?: unknown }> | undefined)?.rust;
  return {
    date: doc.date,
    rustVersion: typeof rust?.version === 'string' ? rust.version : undefined,
    hashes: hashesOf(packages),
    profiles: readProfiles(doc.profiles),
    renames: readRenames(doc.renames),
    packages,
  };
}

/**
 * The archives a profile installs on each of `targets` (as rustup would for that host): the
 * `.tar.xz` when the manifest has one (rustup takes it), else the `.tar.gz`. Components not
 * built for a target are left out, as rustup leaves them out. Unknown profile: an error.
 */
export function archivesForProfile(
  manifest: ChannelManifest,
  profile: string,
  targets: readonly string[],
): ArchiveRef[] {
  const components = manifest.profiles[profile];
  if (!components) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `the manifest of ${manifest.date} has no profile "${profile}"`,
    );
  }
  const found = new Map<string, string>();
  for (const target of targets) {
    for (const component of components) {
      const name = manifest.renames[component] ?? component;
      const builds = manifest.packages.get(name);
      const build = builds?.get(target) ?? builds?.get('*');
      const archive = build && preferredArchive(build);
      if (archive) found.set(archive.path, archive.sha256);
    }
  }
  return [...found].map(([path, sha256]) => ({ path, sha256 }));
}

/** The archive rustup downloads for a build: xz when offered, else gz. */
function preferredArchive(build: PackageTarget): ArchiveRef | undefined {
  if (!build.available) return undefined;
  const xz = build.xzUrl && build.xzHash && archivePathOfUrl(build.xzUrl);
  if (xz && build.xzHash) return { path: xz, sha256: build.xzHash.toLowerCase() };
  const gz = build.url && build.hash && archivePathOfUrl(build.url);
  if (gz && build.hash) return { path: gz, sha256: build.hash.toLowerCase() };
  return undefined;
}

function readPackages(pkg: unknown): Map<string, Map<string, PackageTarget>> {
  const packages = new Map<string, Map<string, PackageTarget>>();
  if (!isTable(pkg)) return packages;
  for (const [name, body] of Object.entries(pkg)) {
    const targets = new Map<string, PackageTarget>();
    const table = isTable(body) ? body.target : undefined;
    if (isTable(table)) {
      for (const [target, build] of Object.entries(table)) {
        if (isTable(build)) targets.set(target, readBuild(build));
      }
    }
    packages.set(name, targets);
  }
  return packages;
}

function readBuild(build: Record<string, unknown>): PackageTarget {
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const read: PackageTarget = { available: build.available === true };
  const url = text(build.url);
  const hash = text(build.hash);
  const xzUrl = text(build.xz_url);
  const xzHash = text(build.xz_hash);
  if (url !== undefined) read.url = url;
  if (hash !== undefined) read.hash = hash;
  if (xzUrl !== undefined) read.xzUrl = xzUrl;
  if (xzHash !== undefined) read.xzHash = xzHash;
  return read;
}

function hashesOf(packages: Map<string, Map<string, PackageTarget>>): Map<string, string> {
  const hashes = new Map<string, string>();
  const add = (url: string | undefined, hash: string | undefined) => {
    const path = url && archivePathOfUrl(url);
    if (path && hash && /^[0-9a-fA-F]{64}$/.test(hash)) hashes.set(path, hash.toLowerCase());
  };
  for (const targets of packages.values()) {
    for (const build of targets.values()) {
      add(build.url, build.hash);
      add(build.xzUrl, build.xzHash);
    }
  }
  return hashes;
}

function readProfiles(profiles: unknown): Record<string, string[]> {
  const read: Record<string, string[]> = {};
  if (!isTable(profiles)) return read;
  for (const [name, list] of Object.entries(profiles)) {
    if (Array.isArray(list)) read[name] = list.filter((item) => typeof item === 'string');
  }
  return read;
}

function readRenames(renames: unknown): Record<string, string> {
  const read: Record<string, string> = {};
  if (!isTable(renames)) return read;
  for (const [from, body] of Object.entries(renames)) {
    if (isTable(body) && typeof body.to === 'string') read[from] = body.to;
  }
  return read;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
