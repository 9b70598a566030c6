/**
 * @module
 * The dependency closure of a filtered mirror, over index lines. Pure, no I/O: a state machine
 * that says which crates' index files it needs next ({@link ClosureWalk.wanted}), is handed them
 * ({@link ClosureWalk.supply}), and ends with every version to hold and why.
 *
 * From every root version it follows `normal` and `build` dependencies (an absent kind is
 * normal), for every target, optional ones included; dev-dependencies are not followed, nor
 * dependencies on other registries. A renamed dependency (`package`) names the crate `package`.
 * A requirement takes its newest matching version that is not yanked (pre-releases only when the
 * requirement names one, cargo's rule, see `semver-req.ts`); a root takes its newest `keep`; a
 * lock file's version is taken as pinned, yanked or not. What cannot be found is reported as a
 * problem and the walk goes on.
 */
import type { CrateId } from './crate-id.ts';
import { isValidCrateName } from './crate-name.ts';
import { type CrateVersionWithDeps, parseIndexFileWithDeps } from './index-entry.ts';
import type { MirrorRoot } from './mirror-filter.ts';
import { parseRequirement, satisfies, type VersionRequirement } from './semver-req.ts';
import { compareVersionKeys, isPreRelease, type VersionKey, versionKey } from './version-order.ts';

/** How far roots reach. */
export interface ClosureOptions {
  /** The newest `keep` matching versions of each crate root (lock roots pin one). At least 1. */
  keep: number;
}

/** Why a version is in the closure: the root that pulled it, and the version that needed it. */
export interface Reason {
  /** The root's label: `serde@^1 (mirror.txt:2)`. */
  root: string;
  /** The version whose dependency it is; absent for a root's own version. */
  via?: CrateId;
}

/** A version the closure takes. */
export interface TakenVersion extends Reason {
  /** As written in the index line. */
  name: string;
  version: string;
  checksum: string;
  yanked: boolean;
}

/** A version the closure would take but the caller's policy withholds. */
export interface WithheldPick extends Reason {
  name: string;
  version: string;
  /** Why the policy withholds it, as the caller said. */
  withheld: string;
}

/** Something the closure could not take. */
export interface ClosureProblem extends Reason {
  /** The crate as it was asked for. */
  crate: string;
  /** What was asked of it: a requirement, `newest`, or a pinned version. */
  wanted: string;
  /** One line saying what is wrong and why it was wanted. */
  message: string;
}

/** The outcome of a walk. */
export interface ClosureResult {
  /** In the order they were reached (roots first, then breadth first). */
  versions: TakenVersion[];
  withheld: WithheldPick[];
  problems: ClosureProblem[];
  /** Index files supplied (read), missing ones included. */
  indexFiles: number;
}

/** Versions of a crate the caller's policy withholds: version → why. */
export type WithheldVersions = ReadonlyMap<string, string>;

/** `root serde@^1 (mirror.txt:2) via serde_derive 1.0.200`. */
export function describeReason(reason: Reason): string {
  const via = reason.via ? ` via ${reason.via.name} ${reason.via.version}` : '';
  return `root ${reason.root}${via}`;
}

type Wanted =
  | { kind: 'newest' }
  | { kind: 'requirement'; requirement: VersionRequirement }
  | { kind: 'exact'; version: string; checksum?: string };

/** One thing asked of one crate. */
interface Demand {
  crate: string;
  wanted: Wanted;
  take: number;
  why: Reason;
}

interface Entry extends CrateVersionWithDeps {
  key: VersionKey;
}

/** A crate's index file, read: versions newest first, or why there is none. */
type CrateIndex =
  | { found: true; entries: Entry[]; withheld: WithheldVersions }
  | { found: false; why: string };

/** The walk. Feed it index files until {@link done}; see the module comment for its rules. */
export class ClosureWalk {
  readonly #keep: number;
  readonly #indexes = new Map<string, CrateIndex>();
  readonly #asked = new Set<string>();
  #toAsk: string[] = [];
  readonly #waiting = new Map<string, Demand[]>();
  /** Demands whose index file is known, resolved in order from {@link #readyAt}. */
  #ready: Demand[] = [];
  #readyAt = 0;
  readonly #seen = new Set<string>();
  readonly #taken = new Map<string, TakenVersion>();
  readonly #withheld = new Map<string, WithheldPick>();
  readonly #problems: ClosureProblem[] = [];
  readonly #requirements = new Map<string, VersionRequirement | string>();

  constructor(roots: readonly MirrorRoot[], options: ClosureOptions) {
    if (!Number.isInteger(options.keep) || options.keep < 1) {
      throw new RangeError(`keep must be a whole number >= 1, got ${options.keep}`);
    }
    this.#keep = options.keep;
    for (const root of roots) this.#demand(rootDemand(root, this.#keep));
    this.#drain();
  }

  /** Crates whose index files are needed and were not asked for yet (each is asked once). */
  wanted(): string[] {
    const names = this.#toAsk;
    this.#toAsk = [];
    return names;
  }

  /**
   * Hands over a crate's index file (`undefined`: it does not exist). `withheld` lists versions
   * the caller's policy withholds: no requirement takes them, and each one a requirement would
   * have taken is reported in {@link ClosureResult.withheld}.
   */
  supply(name: string, body: Buffer | undefined, withheld: WithheldVersions = new Map()): void {
    if (body === undefined) {
      this.#settle(name, { found: false, why: 'no such crate in the index' });
      return;
    }
    this.#settle(name, { found: true, entries: sortedEntries(body), withheld });
  }

  /** The index file of `name` could not be read: what needed it becomes a problem. */
  fail(name: string, why: string): void {
    this.#settle(name, { found: false, why });
  }

  /** True when nothing more is needed. */
  get done(): boolean {
    return this.#toAsk.length === 0 && this.#waiting.size === 0;
  }

  result(): ClosureResult {
    return {
      versions: [...this.#taken.values()],
      withheld: [...this.#withheld.values()],
      problems: [...this.#problems],
      indexFiles: this.#indexes.size,
    };
  }

  #settle(name: string, index: CrateIndex): void {
    const lower = name.toLowerCase();
    if (this.#indexes.has(lower)) return;
    this.#indexes.set(lower, index);
    for (const demand of this.#waiting.get(lower) ?? []) this.#ready.push(demand);
    this.#waiting.delete(lower);
    this.#drain();
  }

  /** Notes a demand once; it waits for its crate's index file unless that is known already. */
  #demand(demand: Demand): void {
    const lower = demand.crate.toLowerCase();
    const key = `${lower}\0${wantedKey(demand.wanted)}\0${demand.take}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    if (!isValidCrateName(demand.crate)) {
      this.#problem(demand, 'not a valid crate name');
      return;
    }
    if (this.#indexes.has(lower)) {
      this.#ready.push(demand);
      return;
    }
    const waiting = this.#waiting.get(lower);
    if (waiting) waiting.push(demand);
    else this.#waiting.set(lower, [demand]);
    if (!this.#asked.has(lower)) {
      this.#asked.add(lower);
      this.#toAsk.push(demand.crate);
    }
  }

  /** Resolves ready demands; taking a version queues its dependencies (breadth first). */
  #drain(): void {
    while (this.#readyAt < this.#ready.length) {
      const next = this.#ready[this.#readyAt++] as Demand;
      const index = this.#indexes.get(next.crate.toLowerCase()) as CrateIndex;
      if (!index.found) this.#problem(next, index.why);
      else if (next.wanted.kind === 'exact') this.#takeExact(next, next.wanted, index);
      else this.#takeNewest(next, index);
    }
    this.#ready = [];
    this.#readyAt = 0;
  }

  #takeExact(
    demand: Demand,
    wanted: Extract<Wanted, { kind: 'exact' }>,
    index: Extract<CrateIndex, { found: true }>,
  ): void {
    const entry = index.entries.find((candidate) => candidate.version === wanted.version);
    if (!entry) {
      this.#problem(demand, 'this version is not in the index');
    } else if (wanted.checksum !== undefined && wanted.checksum !== entry.checksum) {
      this.#problem(
        demand,
        `checksum mismatch: the lock file has ${wanted.checksum}, the index has ${entry.checksum}`,
      );
    } else {
      const withheld = index.withheld.get(entry.version);
      if (withheld === undefined) this.#take(entry, demand.why);
      else this.#withhold(entry, withheld, demand.why);
    }
  }

  /** The newest `take` versions that match and are not yanked; withheld ones are passed over. */
  #takeNewest(demand: Demand, index: Extract<CrateIndex, { found: true }>): void {
    const matches = matcherFor(demand.wanted, index.entries);
    let taken = 0;
    let passedOver = 0;
    for (const entry of index.entries) {
      if (taken >= demand.take) break;
      if (entry.yanked || !matches(entry)) continue;
      const withheld = index.withheld.get(entry.version);
      if (withheld === undefined) {
        this.#take(entry, demand.why);
        taken += 1;
      } else {
        this.#withhold(entry, withheld, demand.why);
        passedOver += 1;
      }
    }
    // Withheld versions are reported as such; a problem is a requirement nothing could meet.
    if (taken === 0 && passedOver === 0) {
      this.#problem(demand, 'no version matches that is not yanked');
    }
  }

  #take(entry: Entry, why: Reason): void {
    const key = `${entry.name.toLowerCase()}@${entry.version}`;
    if (this.#taken.has(key)) return;
    this.#taken.set(key, {
      name: entry.name,
      version: entry.version,
      checksum: entry.checksum,
      yanked: entry.yanked,
      ...why,
    });
    const via = { name: entry.name, version: entry.version };
    for (const dep of entry.deps) {
      if (dep.kind === 'dev' || dep.registry !== null) continue;
      const reason = { root: why.root, via };
      const requirement = this.#requirement(dep.req);
      if (typeof requirement === 'string') {
        this.#problem(
          { crate: dep.crate, wanted: { kind: 'newest' }, take: 1, why: reason },
          `invalid requirement ${JSON.stringify(dep.req)}: ${requirement}`,
        );
        continue;
      }
      this.#demand({
        crate: dep.crate,
        wanted: { kind: 'requirement', requirement },
        take: 1,
        why: reason,
      });
    }
  }

  #withhold(entry: Entry, withheld: string, why: Reason): void {
    const key = `${entry.name.toLowerCase()}@${entry.version}`;
    if (this.#withheld.has(key) || this.#taken.has(key)) return;
    this.#withheld.set(key, { name: entry.name, version: entry.version, withheld, ...why });
  }

  /** Parses a dependency's requirement once however many versions share it. */
  #requirement(text: string): VersionRequirement | string {
    let parsed = this.#requirements.get(text);
    if (parsed === undefined) {
      try {
        parsed = parseRequirement(text);
      } catch (error) {
        parsed = (error as Error).message;
      }
      this.#requirements.set(text, parsed);
    }
    return parsed;
  }

  #problem(demand: Demand, what: string): void {
    const wanted = describeWanted(demand.wanted);
    this.#problems.push({
      crate: demand.crate,
      wanted,
      message: `${demand.crate} ${wanted}: ${what} (${describeReason(demand.why)})`,
      root: demand.why.root,
      ...(demand.why.via && { via: demand.why.via }),
    });
  }
}

function rootDemand(root: MirrorRoot, keep: number): Demand {
  const why = { root: root.label };
  if (root.kind === 'locked') {
    const wanted: Wanted = { kind: 'exact', version: root.version };
    if (root.checksum !== undefined) wanted.checksum = root.checksum;
    return { crate: root.name, wanted, take: 1, why };
  }
  const wanted: Wanted = root.requirement
    ? { kind: 'requirement', requirement: root.requirement }
    : { kind: 'newest' };
  return { crate: root.name, wanted, take: keep, why };
}

/** The versions of an index file, newest first; lines whose version is not semver are left out. */
function sortedEntries(body: Buffer): Entry[] {
  const entries: Entry[] = [];
  for (const version of parseIndexFileWithDeps(body)) {
    const key = versionKey(version.version);
    if (key) entries.push({ ...version, key });
  }
  return entries.sort((a, b) => compareVersionKeys(b.key, a.key));
}

/**
 * What a demand accepts. A bare name takes the newest release; only a crate that has no release
 * that is not yanked falls back to its newest pre-release.
 */
function matcherFor(wanted: Wanted, entries: readonly Entry[]): (entry: Entry) => boolean {
  if (wanted.kind === 'requirement') {
    return (entry) => satisfies(wanted.requirement, entry.version);
  }
  const hasRelease = entries.some((entry) => !entry.yanked && !isPreRelease(entry.key));
  return hasRelease ? (entry) => !isPreRelease(entry.key) : () => true;
}

function wantedKey(wanted: Wanted): string {
  switch (wanted.kind) {
    case 'newest':
      return 'n';
    case 'requirement':
      return `r${wanted.requirement.text}`;
    case 'exact':
      return `e${wanted.version} ${wanted.checksum ?? ''}`;
  }
}

function describeWanted(wanted: Wanted): string {
  switch (wanted.kind) {
    case 'newest':
      return '(newest)';
    case 'requirement':
      return wanted.requirement.text;
    case 'exact':
      return wanted.version;
  }
}
