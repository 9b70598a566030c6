/**
 * @module
 * What a filtered mirror holds: the roots of `--mirror-filter` files and their dependency
 * closure, every version with the reason it was taken. Reads the filter files and the lock files
 * they name, then walks the closure (`registry/closure.ts`) fetching index files `concurrency`
 * at a time. Used by the filtered mirror (`-a --mirror-filter`) and by the bundle export.
 */
import { ClosureWalk, describeReason, type WithheldVersions } from '../registry/closure.ts';
import type { MirrorRoot } from '../registry/mirror-filter.ts';
import { readMirrorRoots } from './mirror-roots.ts';

/** One version to hold, and why: `root serde@^1 (mirror.txt:2) via serde_derive 1.0.200`. */
export interface SelectedVersion {
  name: string;
  version: string;
  checksum: string;
  reason: string;
}

/** What the filters select, and what they asked for that could not be had. */
export interface MirrorSelection {
  versions: SelectedVersion[];
  /** One line each: a requirement nothing matches, a crate not in the index, … */
  problems: string[];
}

/** How {@link selectFromFilters} reaches the index. */
export interface SelectionOptions {
  /** The newest `keep` matching versions of each crate root (default 1 in the CLI). */
  keep: number;
  /** A crate's index file, or `undefined` when the crate does not exist. */
  readIndex(name: string): Promise<Buffer | undefined>;
  /** Index files read at once; default 16. */
  concurrency?: number;
}

/**
 * Selects the roots of `files` and their closure. A malformed filter file or lock file throws
 * `CARGO_CACHER_INVALID_CONFIG` (`file:line: …`); whatever the walk cannot find (or an index
 * file `readIndex` fails to read) is a problem, and the rest goes on.
 */
export async function selectFromFilters(
  files: readonly string[],
  options: SelectionOptions,
): Promise<MirrorSelection> {
  const { versions, problems } = await selectWithPolicy(files, options);
  return {
    versions: versions.map(({ name, version, checksum, reason }) => ({
      name,
      version,
      checksum,
      reason,
    })),
    problems,
  };
}

/** A version the policy withholds that the closure would otherwise take. */
export interface WithheldSelection {
  name: string;
  version: string;
  /** Why the policy withholds it. */
  withheld: string;
  reason: string;
}

/** A problem, for a job report: the crate (or the filter line) and what was asked of it. */
export interface UnmetWant {
  /** The crate, or where the filter said it (`mirror.txt:4`) for a root that found nothing. */
  name: string;
  /** A requirement, `(newest)` or a pinned version; empty for a filter line. */
  wanted: string;
  /** The same line as in {@link MirrorSelection.problems}. */
  message: string;
}

/** {@link MirrorSelection} under a supply-chain policy. */
export interface PolicySelection extends MirrorSelection {
  /** Whether each is yanked too (a lock file may pin a yanked version). */
  versions: (SelectedVersion & { yanked: boolean })[];
  /** {@link MirrorSelection.problems}, one for one, with what each was about. */
  unmet: UnmetWant[];
  withheld: WithheldSelection[];
  /** Index files read (missing ones included). */
  indexFiles: number;
}

/**
 * {@link selectFromFilters} under a policy: `withheldIn` says which versions of an index file
 * are withheld (and why); no requirement takes those, so the mirror holds what clients resolve
 * to through the filtered index, and the withheld ones are listed apart.
 */
export async function selectWithPolicy(
  files: readonly string[],
  options: SelectionOptions & { withheldIn?: (name: string, body: Buffer) => WithheldVersions },
): Promise<PolicySelection> {
  const { roots, problems } = await readMirrorRoots(files);
  const walk = await walkClosure(roots, options);
  const result = walk.result();
  const unmet: UnmetWant[] = [
    ...problems.map(({ location, message }) => ({ name: location, wanted: '', message })),
    ...result.problems.map(({ crate, wanted, message }) => ({ name: crate, wanted, message })),
  ];
  return {
    versions: result.versions.map((v) => ({
      name: v.name,
      version: v.version,
      checksum: v.checksum,
      yanked: v.yanked,
      reason: describeReason(v),
    })),
    problems: unmet.map((problem) => problem.message),
    unmet,
    withheld: result.withheld.map((v) => ({
      name: v.name,
      version: v.version,
      withheld: v.withheld,
      reason: describeReason(v),
    })),
    indexFiles: result.indexFiles,
  };
}

/**
 * Feeds the walk the index files it asks for, reading `concurrency` at a time, until it is done.
 * Files are handed over in the order the walk asked for them, however the reads finish, so the
 * walk (and the reason each version gives) is the same at every pass.
 */
async function walkClosure(
  roots: readonly MirrorRoot[],
  options: SelectionOptions & { withheldIn?: (name: string, body: Buffer) => WithheldVersions },
): Promise<ClosureWalk> {
  const walk = new ClosureWalk(roots, { keep: options.keep });
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const asked: string[] = [];
  const outcomes = new Map<number, ReadOutcome>();
  let started = 0;
  let supplied = 0;
  const running = new Set<Promise<void>>();
  const read = async (position: number, name: string): Promise<void> => {
    try {
      outcomes.set(position, { body: await options.readIndex(name) });
    } catch (err) {
      outcomes.set(position, { error: (err as Error).message });
    }
  };
  for (;;) {
    for (let outcome = outcomes.get(supplied); outcome; outcome = outcomes.get(supplied)) {
      outcomes.delete(supplied);
      supplyOne(walk, asked[supplied++] as string, outcome, options.withheldIn);
    }
    for (const name of walk.wanted()) asked.push(name);
    while (running.size < concurrency && started < asked.length) {
      const reading = read(started, asked[started] as string);
      started += 1;
      running.add(reading);
      reading.then(
        () => running.delete(reading),
        () => running.delete(reading),
      );
    }
    if (running.size === 0 && supplied === asked.length) break;
    await Promise.race(running);
  }
  return walk;
}

/** An index file as read: its body (`undefined`: no such crate), or why it could not be read. */
type ReadOutcome = { body: Buffer | undefined } | { error: string };

function supplyOne(
  walk: ClosureWalk,
  name: string,
  outcome: ReadOutcome,
  withheldIn: ((name: string, body: Buffer) => WithheldVersions) | undefined,
): void {
  if ('error' in outcome) {
    walk.fail(name, `its index file could not be read: ${outcome.error}`);
    return;
  }
  const { body } = outcome;
  walk.supply(name, body, body && withheldIn ? withheldIn(name, body) : undefined);
}
