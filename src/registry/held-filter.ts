/**
 * @module
 * The index of what is held: an index file with only the lines of versions whose `.crate` the
 * cache holds, so cargo resolves to what it can download when upstream cannot be reached
 * (`--offline`, an upstream outage, `--only-held`). Pure, no I/O.
 */
import { versionOfLine } from './index-entry.ts';
import { mapIndexLines } from './index-lines.ts';

/** An index file reduced to the held versions. */
export interface HeldIndexFile {
  /** The held versions' lines, upstream's bytes; the very Buffer passed in when all are held. */
  body: Buffer;
  /** How many versions it lists: none means the file is not served at all (404). */
  versions: number;
}

/**
 * Keeps the lines of the versions in `held` (exact version strings, as in the index line). Lines
 * that name no version go too: the cache could serve none, and cargo skips them. The version is
 * read without parsing each line's JSON (see {@link versionOfLine}): this runs over every file of
 * the git index when it is rebuilt.
 */
export function keepHeldVersions(body: Buffer, held: ReadonlySet<string>): HeldIndexFile {
  let versions = 0;
  const kept = mapIndexLines(body, (line) => {
    const version = versionOfLine(line);
    if (version === undefined || !held.has(version)) return false;
    versions++;
    return true;
  });
  return { body: kept, versions };
}
