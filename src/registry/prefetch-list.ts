/**
 * @module
 * What a prefetch request names: a `Cargo.lock`, or a plain list of `name=version` lines. Pure,
 * no I/O.
 */
import { Errors } from '../errors.ts';
import { isValidCrateName } from './crate-name.ts';
import type { LockedCrate, LockfileVersion, SkippedPackage } from './lockfile.ts';
import { parseLockfile } from './lockfile.ts';
import { isValidVersion } from './version.ts';

/** The input formats {@link parsePrefetchInput} tells apart. */
export type PrefetchFormat = `lockfile-v${LockfileVersion}` | 'list';

/** The crates a prefetch input asks for, the packages it pins elsewhere, and its format. */
export interface PrefetchInput {
  format: PrefetchFormat;
  registry: LockedCrate[];
  skipped: SkippedPackage[];
}

/**
 * A lockfile always has a TOML table header (`[[package]]`, or `[root]`/`[metadata]` in old
 * ones) or a `version = N` line; a list line starts with a crate name or `#`, and a version is
 * never a bare integer, so neither can be the other.
 */
const LOCKFILE_MARKER = /^[ \t]*(?:\[|version[ \t]*=[ \t]*\d+[ \t]*(?:#.*)?\r?$)/m;

/**
 * Reads a prefetch input, telling a `Cargo.lock` from a `name=version` list by its content.
 * Throws `CARGO_CACHER_BAD_REQUEST` when it is neither.
 */
export function parsePrefetchInput(text: string): PrefetchInput {
  if (!LOCKFILE_MARKER.test(text)) {
    return { format: 'list', registry: parsePrefetchList(text), skipped: [] };
  }
  const { version, registry, skipped } = parseLockfile(text);
  return { format: `lockfile-v${version}`, registry, skipped };
}

/**
 * Parses `name=version` lines, one crate each. Spaces around `=` are allowed; blank lines and
 * `#` comments (whole-line or trailing) are skipped; repeats are listed once. Throws
 * `CARGO_CACHER_BAD_REQUEST` naming the first bad line.
 */
export function parsePrefetchList(text: string): LockedCrate[] {
  const crates = new Map<string, LockedCrate>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.split('#')[0]?.trim() ?? '';
    if (line === '') return;
    const crate = parseListLine(line, index + 1);
    const key = `${crate.name.toLowerCase()} ${crate.version}`;
    if (!crates.has(key)) crates.set(key, crate);
  });
  return [...crates.values()];
}

function parseListLine(line: string, lineNumber: number): LockedCrate {
  const fail = (why: string) =>
    Errors.CARGO_CACHER_BAD_REQUEST(`prefetch list line ${lineNumber}: ${why}`);
  const equals = line.indexOf('=');
  if (equals === -1) throw fail(`expected "name=version", got ${JSON.stringify(line)}`);
  const name = line.slice(0, equals).trim();
  const version = line.slice(equals + 1).trim();
  if (!isValidCrateName(name)) throw fail(`invalid crate name ${JSON.stringify(name)}`);
  if (!isValidVersion(version)) throw fail(`invalid version ${JSON.stringify(version)}`);
  return { name, version };
}
