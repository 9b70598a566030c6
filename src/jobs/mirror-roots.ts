/**
 * @module
 * Reading `--mirror-filter` files and the lock files they name into the roots of a filtered
 * mirror. The parsing is `registry/mirror-filter.ts`'s; lock files and directories are read the
 * way `-f` reads them (`prefetch-input.ts`).
 */
import { readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Errors, isCacherError } from '../errors.ts';
import {
  type FilterPath,
  lockedRoots,
  type MirrorRoot,
  parseMirrorFilter,
} from '../registry/mirror-filter.ts';
import { readPrefetchPaths } from './prefetch-input.ts';

/** The roots of some filter files, and what was found wanting without being an error. */
export interface MirrorRoots {
  roots: MirrorRoot[];
  /** Where, and one line: `mirror.txt:4: no Cargo.lock under /srv/projects`. */
  problems: { location: string; message: string }[];
}

/**
 * Reads every filter file and the lock files its path lines name. A missing or malformed filter
 * file, a path that does not exist and a lock file that does not parse are configuration errors
 * (`CARGO_CACHER_INVALID_CONFIG`, one line starting with `file:line:` where there is a line);
 * a directory holding no lock file is only a problem.
 */
export async function readMirrorRoots(files: readonly string[]): Promise<MirrorRoots> {
  const roots: MirrorRoot[] = [];
  const problems: MirrorRoots['problems'] = [];
  for (const file of files) {
    for (const entry of parseMirrorFilter(await readFilterFile(file), file)) {
      if (entry.kind === 'crate') {
        roots.push(entry);
        continue;
      }
      const locked = await readLockRoots(entry);
      if (locked.length === 0) {
        const message = `${entry.location}: no Cargo.lock under ${entry.path}`;
        problems.push({ location: entry.location, message });
      }
      roots.push(...locked);
    }
  }
  return { roots, problems };
}

async function readFilterFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`--mirror-filter ${file}: ${reason}`, { cause: err });
  }
}

async function readLockRoots(entry: FilterPath): Promise<MirrorRoot[]> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(entry.path)).isDirectory();
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`${entry.location}: ${entry.path}: ${reason}`, {
      cause: err,
    });
  }
  try {
    const request = await readPrefetchPaths([entry.path]);
    // Reports name the path as written; a directory's lock files are merged into one request,
    // so the lock file is named only when it is the only one.
    const [only, ...more] = request.files;
    const file =
      isDirectory && only !== undefined && more.length === 0
        ? join(entry.text, relative(entry.path, only))
        : entry.text;
    return lockedRoots(request.crates, { file, location: entry.location });
  } catch (err) {
    const message = isCacherError(err) ? err.message : (err as Error).message;
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`${entry.location}: ${message}`, { cause: err });
  }
}
