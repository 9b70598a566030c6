/**
 * @module
 * The full mirror (`-a`): every version of every crate in the git index, `-t` at a time.
 * Resumable (what is stored is verified, so it is skipped), and exactly one pass at a time: a
 * refresh that lands while a pass runs queues an incremental pass for what it added.
 */
import type { CrateCache } from '../cache/crate-cache.ts';
import type { GitMirror, GitRefresh } from '../git/git-mirror.ts';
import { changedIndexPaths, listIndexPaths, readTreeFiles } from '../git/tree-reader.ts';
import type { AppLogger } from '../logger.ts';
import type { LivePolicy } from '../policy/live-policy.ts';
import { type CrateVersion, parseIndexFile } from '../registry/index-entry.ts';
import { filterIndexFile, type WithheldVersion } from '../registry/policy.ts';
import { JOB_RETRY, type JobRetry } from '../upstream/retry-policy.ts';
import type { Job, JobRegistry, PackageReport } from './job.ts';
import { describeWithheld, storeVersion } from './mirror-version.ts';
import { reportProgress } from './progress.ts';
import { runPool } from './worker-pool.ts';

/** What a {@link FullMirror} needs. */
export interface FullMirrorDeps {
  git: GitMirror;
  crates: CrateCache;
  jobs: JobRegistry;
  threads: number;
  skipYanked: boolean;
  log: AppLogger;
  retry?: JobRetry;
  tty?: boolean;
  /** The supply-chain policy: withheld versions are skipped, young ones taken once of age. */
  policy?: LivePolicy;
  now?: () => number;
}

/** Work waiting for the running pass to end. */
interface PendingWork {
  full: boolean;
  ranges: { from: string; to: string }[];
  /** Index files to look at again: their young versions have come of age. */
  paths: string[];
}

/** A version the policy withholds, as the mirror meets it. */
type Withheld = WithheldVersion['decision'];

/** Runs mirror passes one at a time. */
export class FullMirror {
  readonly #deps: FullMirrorDeps;
  readonly #stop = new AbortController();
  #pending: PendingWork = { full: false, ranges: [], paths: [] };
  #draining: Promise<void> | undefined;
  /** Index path → when its earliest young version comes of age. */
  readonly #waiting = new Map<string, number>();
  #wakeUp: NodeJS.Timeout | undefined;

  constructor(deps: FullMirrorDeps) {
    this.#deps = deps;
  }

  /**
   * Follows the git mirror: its first clone starts a full pass, and each later refresh an
   * incremental one. Call before the mirror starts so no refresh is missed; a mirror that is
   * ready already (a restart) needs {@link requestFullPass} to resume.
   */
  follow(): void {
    this.#deps.git.onRefresh((refresh) => this.#onRefresh(refresh));
  }

  /** Queues a full pass (or runs it now when idle). */
  requestFullPass(): void {
    this.#pending.full = true;
    this.#drain();
  }

  /** Resolves when no pass is running or queued. */
  async idle(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#wakeUp);
    await this.idle();
  }

  #onRefresh(refresh: GitRefresh): void {
    if (refresh.previousUpstream === undefined) this.#pending.full = true;
    else this.#pending.ranges.push({ from: refresh.previousUpstream, to: refresh.upstream });
    this.#drain();
  }

  #drain(): void {
    if (this.#draining || this.#stop.signal.aborted) return;
    this.#draining = this.#drainLoop().finally(() => {
      this.#draining = undefined;
    });
    this.#draining.catch(() => undefined);
  }

  async #drainLoop(): Promise<void> {
    while (!this.#stop.signal.aborted && hasWork(this.#pending)) {
      const work = this.#pending;
      this.#pending = { full: false, ranges: [], paths: [] };
      try {
        await this.#runPass(work);
      } catch (err) {
        this.#deps.log.error({ err }, 'mirror pass failed');
      }
    }
    this.#scheduleWaiting();
  }

  /** Queues the files of young versions for a pass once the first of them has come of age. */
  #scheduleWaiting(): void {
    clearTimeout(this.#wakeUp);
    if (this.#waiting.size === 0 || this.#stop.signal.aborted) return;
    const first = Math.min(...this.#waiting.values());
    const delay = Math.min(Math.max(0, first - (this.#deps.now ?? Date.now)()), 86_400_000);
    this.#wakeUp = setTimeout(() => this.takeAged(), delay);
    this.#wakeUp.unref();
  }

  /** Queues a pass over the files whose young versions have come of age by now. */
  takeAged(): void {
    const now = (this.#deps.now ?? Date.now)();
    for (const [path, at] of this.#waiting) {
      if (at > now) continue;
      this.#waiting.delete(path);
      this.#pending.paths.push(path);
    }
    if (this.#pending.paths.length > 0) this.#drain();
    else this.#scheduleWaiting();
  }

  /** Runs one pass and returns its job. */
  async #runPass(work: PendingWork): Promise<Job> {
    const { git, log, jobs } = this.#deps;
    const rev = git.status().upstreamHead as string;
    const paths = work.full
      ? await listIndexPaths(git.gitDir, rev)
      : [...new Set([...(await this.#changedPaths(work)), ...work.paths])];
    const job = jobs.create(
      'mirror',
      work.full ? 'full mirror' : `incremental mirror (${paths.length} crates)`,
    );
    const stop = reportProgress(job, log, this.#deps.tty ?? false);
    try {
      await runPool(
        this.#versions(rev, paths, job),
        this.#deps.threads,
        (v) => this.#mirrorOne(job, v),
        this.#stop.signal,
      );
      job.finish(this.#stop.signal.aborted ? new Error('stopped before the end') : undefined);
    } catch (err) {
      job.finish(err);
    } finally {
      stop();
    }
    return job;
  }

  async #changedPaths(work: PendingWork): Promise<string[]> {
    const paths = new Set<string>();
    for (const { from, to } of work.ranges) {
      for (const path of await changedIndexPaths(this.#deps.git.gitDir, from, to)) paths.add(path);
    }
    return [...paths];
  }

  async *#versions(
    rev: string,
    paths: string[],
    job: Job,
  ): AsyncIterable<CrateVersion & { withheld?: Withheld }> {
    for await (const file of readTreeFiles(this.#deps.git.gitDir, rev, paths)) {
      const versions = parseIndexFile(file.body);
      const wanted = this.#deps.skipYanked ? versions.filter((v) => !v.yanked) : versions;
      const withheld = this.#withheldIn(file.path, file.body);
      job.expect(wanted.length);
      for (const version of wanted) {
        const decision = withheld.get(version.version);
        yield decision ? { ...version, withheld: decision } : version;
      }
    }
  }

  /** The versions of a file the policy withholds; young ones are noted to be taken later. */
  #withheldIn(path: string, body: Buffer): Map<string, Withheld> {
    const { policy } = this.#deps;
    if (!policy || policy.inactive) return new Map();
    const now = (this.#deps.now ?? Date.now)();
    const filtered = filterIndexFile(body, policy.current(), now);
    if (filtered.changesAt !== undefined) {
      this.#waiting.set(path, Math.min(this.#waiting.get(path) ?? Infinity, filtered.changesAt));
    }
    return new Map(filtered.withheld.map((entry) => [entry.version, entry.decision]));
  }

  async #mirrorOne(job: Job, version: CrateVersion & { withheld?: Withheld }): Promise<void> {
    job.record(await this.#fetchVersion(version));
  }

  async #fetchVersion(entry: CrateVersion & { withheld?: Withheld }): Promise<PackageReport> {
    const id = { name: entry.name, version: entry.version };
    if (entry.withheld)
      return { ...id, status: 'skipped', reason: describeWithheld(entry.withheld) };
    const { crates, retry = JOB_RETRY } = this.#deps;
    return storeVersion({ crates, retry, signal: this.#stop.signal }, entry);
  }
}

function hasWork(work: PendingWork): boolean {
  return work.full || work.ranges.length > 0 || work.paths.length > 0;
}
