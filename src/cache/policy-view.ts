/**
 * @module
 * Index files as the supply-chain policy lets them be served: the lines of withheld versions
 * (denied, or younger than `--min-publish-age`) marked yanked or left out (`--withheld-as`),
 * every other byte upstream's, and
 * the ETag that of the bytes served, so a client's cached copy is revalidated when the answer
 * changes. The filtered copy is kept per file until the policy files change, upstream's file
 * changes, or a withheld version comes of age (the answer changes then although upstream's did
 * not).
 */
import type { OverlayFilter } from '../git/overlay-filter.ts';
import type { AppLogger } from '../logger.ts';
import type { PolicyObserver } from '../observe/policy-events.ts';
import type { LivePolicy } from '../policy/live-policy.ts';
import { crateNameFromIndexPath } from '../registry/crate-name.ts';
import { filterIndexFile, type WithheldVersion } from '../registry/policy.ts';
import { etagOfBody, type IndexFile } from './index-record.ts';
import { LruMap } from './lru.ts';

/** Told about every version withheld from an index file (metrics, logs, the dashboard). */
export type WithheldObserver = (withheld: WithheldVersion) => void;

interface Filtered {
  source: IndexFile;
  generation: number;
  /** When the filtered copy stops being right (a withheld version comes of age). */
  until: number;
  served: IndexFile;
}

/** Filtered copies kept: one per index file served under a policy. */
const ENTRIES = 20_000;

/** Applies the live policy to index files. */
export class PolicyIndexView {
  readonly #policy: LivePolicy;
  readonly #now: () => number;
  readonly #onWithheld: WithheldObserver | undefined;
  readonly #filtered = new LruMap<string, Filtered>(ENTRIES);

  constructor(policy: LivePolicy, options: { now?: () => number; onWithheld?: WithheldObserver }) {
    this.#policy = policy;
    this.#now = options.now ?? Date.now;
    this.#onWithheld = options.onWithheld;
  }

  /** The file at `path` as served under the policy (the same object when nothing changed). */
  serve(path: string, file: IndexFile): IndexFile {
    if (this.#policy.inactive || crateNameFromIndexPath(path) === undefined) return file;
    const now = this.#now();
    const generation = this.#policy.generation;
    const kept = this.#filtered.get(path);
    if (kept && kept.source === file && kept.generation === generation && now < kept.until) {
      return kept.served;
    }
    const filtered = filterIndexFile(file.body, this.#policy.current(), now);
    for (const withheld of filtered.withheld) this.#onWithheld?.(withheld);
    const served =
      filtered.body === file.body
        ? file
        : { ...file, body: filtered.body, etag: etagOfBody(filtered.body) };
    const until = filtered.changesAt ?? Number.POSITIVE_INFINITY;
    this.#filtered.set(path, { source: file, generation, until, served });
    return served;
  }
}

/**
 * Counts every withheld version (each time a file is filtered anew) and logs each one once at
 * warn, however often its file is served.
 */
export function observeWithheld(log: AppLogger, observer?: PolicyObserver): WithheldObserver {
  const logged = new LruMap<string, true>(50_000);
  return ({ name, version, decision }) => {
    const crate = `${name.toLowerCase()}@${version}`;
    observer?.({
      kind: 'withheld',
      reason: decision.kind,
      crate,
      ...(decision.kind === 'young' && { availableAt: decision.availableAt }),
    });
    const key = `${crate}:${decision.kind}`;
    if (logged.get(key)) return;
    logged.set(key, true);
    const why =
      decision.kind === 'denied'
        ? `denied by "${decision.rule}"`
        : `published ${new Date(decision.pubtime).toISOString()}, served from ${new Date(decision.availableAt).toISOString()}`;
    log.warn({ crate }, `policy: withheld ${crate}: ${why}`);
  };
}

/**
 * The policy's view of the git index: for each overlay the git mirror builds, a filter of its
 * index files (the same filtering as the sparse index), which also notes when the answer changes
 * by itself (the earliest withheld version to come of age).
 */
export function policyOverlayFilter(
  policy: LivePolicy,
  options: { now?: () => number; onWithheld?: WithheldObserver },
): () => OverlayFilter | undefined {
  return () => {
    if (policy.inactive) return undefined;
    const now = (options.now ?? Date.now)();
    const current = policy.current();
    let changesAt: number | undefined;
    return {
      filter(path, body) {
        if (crateNameFromIndexPath(path) === undefined) return undefined;
        const filtered = filterIndexFile(body, current, now);
        for (const withheld of filtered.withheld) options.onWithheld?.(withheld);
        if (filtered.body === body) return undefined;
        if (filtered.changesAt !== undefined) {
          changesAt = Math.min(changesAt ?? Number.POSITIVE_INFINITY, filtered.changesAt);
        }
        return filtered.body;
      },
      changesAt: () => changesAt,
    };
  };
}
