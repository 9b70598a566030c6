/**
 * @module
 * The roots of a filtered mirror (`-a --mirror-filter <file>`). A filter file lists one root a
 * line, with `#` comments and blank lines ignored:
 *
 * - `name`: the newest version of the crate that is not yanked;
 * - `name@<requirement>`: the newest one matching a cargo requirement (`serde@1` is `^1`, as in
 *   `Cargo.toml`; `serde@=1.0.200` is that version only);
 * - a path to a `Cargo.lock`, or to a directory searched for them: every registry package they
 *   pin. A line is a path when it contains `/`, ends in `.lock` or starts with `.`; a relative
 *   path is relative to the filter file's directory.
 *
 * Pure, no I/O: reading the lock files a filter names is `jobs/mirror-roots.ts`'s.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { Errors } from '../errors.ts';
import { isValidCrateName } from './crate-name.ts';
import type { LockedCrate } from './lockfile.ts';
import { parseRequirement, type VersionRequirement } from './semver-req.ts';

/** Where a root was written, for reasons and errors: `mirror.txt:2`. */
export type FilterLocation = string;

/** A crate named in a filter file: its newest version, or the newest matching `requirement`. */
export interface CrateRoot {
  readonly kind: 'crate';
  readonly name: string;
  /** Absent for a bare name: the newest version that is not yanked. */
  readonly requirement?: VersionRequirement;
  /** How a report names the root: `serde@^1 (mirror.txt:2)`. */
  readonly label: string;
}

/** A version a lock file pins: taken exactly, yanked or not. */
export interface LockedRoot {
  readonly kind: 'locked';
  readonly name: string;
  readonly version: string;
  /** The lock file's checksum, held against the index line's. */
  readonly checksum?: string;
  /** `serde 1.0.200 in app/Cargo.lock (mirror.txt:3)`. */
  readonly label: string;
}

/** What the closure starts from. */
export type MirrorRoot = CrateRoot | LockedRoot;

/** A path line: a lock file, or a directory searched for lock files. */
export interface FilterPath {
  readonly kind: 'path';
  /** The path resolved against the filter file's directory. */
  readonly path: string;
  /** The line as written. */
  readonly text: string;
  readonly location: FilterLocation;
}

/** One line of a filter file. */
export type FilterEntry = CrateRoot | FilterPath;

/**
 * Reads a filter file into its lines' roots and paths, in order. `source` is the file's path: locations name it, and relative paths are
 * resolved against its directory. Throws `CARGO_CACHER_INVALID_CONFIG` whose one-line message is
 * `${source}:${line}: <what is wrong>` at the first malformed line.
 */
export function parseMirrorFilter(text: string, source: string): FilterEntry[] {
  const entries: FilterEntry[] = [];
  // A byte order mark left by an editor is not part of the first line.
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, index) => {
    const hash = raw.indexOf('#');
    const line = (hash === -1 ? raw : raw.slice(0, hash)).trim();
    if (line === '') return;
    const location = `${source}:${index + 1}`;
    if (isPathLine(line)) {
      entries.push({ kind: 'path', path: resolveAgainst(source, line), text: line, location });
      return;
    }
    try {
      entries.push(parseCrateLine(line, location));
    } catch (error) {
      throw Errors.CARGO_CACHER_INVALID_CONFIG(`${location}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  });
  return entries;
}

/** A line naming a file or directory rather than a crate. */
export function isPathLine(line: string): boolean {
  return line.includes('/') || line.endsWith('.lock') || line.startsWith('.');
}

/** The roots of what a lock file (or the lock files of a directory) pins. */
export function lockedRoots(
  locked: readonly LockedCrate[],
  where: { file: string; location: FilterLocation },
): LockedRoot[] {
  return locked.map((pkg) => ({
    kind: 'locked',
    name: pkg.name,
    version: pkg.version,
    ...(pkg.checksum !== undefined && { checksum: pkg.checksum }),
    label: `${pkg.name} ${pkg.version} in ${where.file} (${where.location})`,
  }));
}

function resolveAgainst(source: string, path: string): string {
  return isAbsolute(path) ? path : join(dirname(source), path);
}

function parseCrateLine(line: string, location: FilterLocation): CrateRoot {
  const at = line.indexOf('@');
  const name = (at === -1 ? line : line.slice(0, at)).trim();
  if (name === '' && at !== -1) throw new Error('missing crate name before "@"');
  if (!isValidCrateName(name)) throw new Error(`invalid crate name ${JSON.stringify(name)}`);
  if (at === -1) return { kind: 'crate', name, label: `${name} (${location})` };
  const written = line.slice(at + 1).trim();
  if (written === '') throw new Error('missing version requirement after "@"');
  let requirement: VersionRequirement;
  try {
    requirement = parseRequirement(written);
  } catch (error) {
    throw new Error(
      `invalid version requirement ${JSON.stringify(written)}: ${(error as Error).message}`,
    );
  }
  return { kind: 'crate', name, requirement, label: `${name}@${written} (${location})` };
}
