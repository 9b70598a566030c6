/**
 * @module
 * Reading `-f` paths: a Cargo.lock of any format or a `name=version` list (told apart by
 * content, not by name), or a directory searched for Cargo.lock files.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Errors, isCacherError } from '../errors.ts';
import type { LockedCrate, SkippedPackage } from '../registry/lockfile.ts';
import { parsePrefetchInput } from '../registry/prefetch-list.ts';

/** Everything the given paths ask for, deduplicated. */
export interface PrefetchRequest {
  crates: LockedCrate[];
  skipped: SkippedPackage[];
  /** The files that were read. */
  files: string[];
}

/** Directories never searched: build output and git internals. */
const SKIPPED_DIRS = new Set(['target', '.git']);

/** Reads every path; a missing or unreadable path is an error, never silently ignored. */
export async function readPrefetchPaths(paths: string[]): Promise<PrefetchRequest> {
  const files: string[] = [];
  for (const path of paths) files.push(...(await filesOf(path)));
  const texts = await Promise.all(
    files.map(async (file) => ({ file, text: await readFile(file, 'utf8') })),
  );
  return mergeInputs(texts);
}

/**
 * Parses texts (files or HTTP bodies) into one deduplicated request. Files that pin one version
 * with different checksums keep one entry per checksum, so a wrong one is still held against
 * upstream's index and reported, whichever file came first.
 */
export function mergeInputs(texts: { file: string; text: string }[]): PrefetchRequest {
  const crates = new Map<string, LockedCrate[]>();
  const skipped: SkippedPackage[] = [];
  for (const { file, text } of texts) {
    let input: ReturnType<typeof parsePrefetchInput>;
    try {
      input = parsePrefetchInput(text);
    } catch (err) {
      const message = isCacherError(err) ? err.message : String(err);
      throw Errors.CARGO_CACHER_BAD_REQUEST(`${file}: ${message}`, { cause: err });
    }
    for (const pkg of input.registry) {
      const key = `${pkg.name.toLowerCase()}@${pkg.version}`;
      const seen = crates.get(key) ?? [];
      if (pkg.checksum === undefined) {
        if (seen.length === 0) crates.set(key, [pkg]);
      } else if (!seen.some((other) => other.checksum === pkg.checksum)) {
        crates.set(key, [...seen.filter((other) => other.checksum !== undefined), pkg]);
      }
    }
    skipped.push(...input.skipped);
  }
  return { crates: [...crates.values()].flat(), skipped, files: texts.map((t) => t.file) };
}

async function filesOf(path: string): Promise<string[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`prefetch path ${path}: ${(err as Error).message}`);
  }
  return info.isDirectory() ? findLockfiles(path) : [path];
}

async function findLockfiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !SKIPPED_DIRS.has(entry.name))
      found.push(...(await findLockfiles(path)));
    else if (entry.isFile() && entry.name === 'Cargo.lock') found.push(path);
  }
  return found.sort();
}
