/**
 * @module
 * The filtered mirror (`-a --mirror-filter <file>`): the roots of the filter files and their
 * dependency closure (`mirror-selection.ts`), instead of all of crates.io. A pass reads the
 * filter files again, recomputes the closure from index files revalidated through the index
 * cache (so new releases of what is followed arrive), and fetches what the catalogue does not
 * hold, `-t` at a time. One pass runs at a time; a pass asked for meanwhile runs once after it.
 * Passes run at startup, then after each git refresh or, without a git mirror, every `-r`.
 */
import type { CrateCache } from '../cache/crate-cache.ts';
import type { IndexCache } from '../cache/index-cache.ts';
import type { GitMirror } from '../git/git-mirror.ts';
import type { AppLogger } from '../logger.ts';
import type { LivePolicy } from '../policy/live-policy.ts';
import type { WithheldVersions } from '../registry/closure.ts';
import { indexPath } from '../registry/crate-name.ts';
import { filterIndexFile } from '../registry/policy.ts';
import { JOB_RETRY, type JobRetry, retryJob } from '../upstream/retry-policy.ts';
import type { Job, JobRegistry, PackageReport } from './job.ts';
import { type PolicySelection, selectWithPolicy } from './mirror-selection.ts';
import { describeWithheld, storeVersion } from './mirror-version.ts';
import { reportProgress } from './progress.ts';
import { runPool } from './worker-pool.ts';

/** What a {@link FilteredMirror} needs. */
export interface FilteredMirrorDeps {
  /** The `--mirror-filter` files (absolute paths). */
  filters: readonly string[];
  /** `--mirror-keep`: the newest n versions of each crate root. */
  keep: number;
  index: IndexCache;
  crates: CrateCache;
  jobs: JobRegistry;
  threads: number;
  log: AppLogger;
  retry?: JobRetry;
  tty?: boolean;
  /** The supply-chain policy: withheld versions are not taken, and reported. */
  policy?: LivePolicy;
  now?: () => number;
}

/** The longest wait before a pass for a young version that comes of age (timers cap out). */
const MAX_WAKE_UP_MS = 86_400_000;

/** Runs filtered mirror passes one at a time. */
export class FilteredMirror {
  readonly #deps: FilteredMirrorDeps;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  #again = false;
  #interval: NodeJS.Timeout | undefined;
  #wakeUp: NodeJS.Timeout | undefined;
  /** The earliest time a young version withheld in the running pass comes of age. */
  #comesOfAge: number | undefined;
  #lastJob: Job | undefined;

  constructor(deps: FilteredMirrorDeps) {
    this.#deps = deps;
  }

  /** A pass after each refresh of the git mirror (call before it starts, to miss none). */
  follow(git: GitMirror): void {
    git.onRefresh(() => this.requestPass());
  }

  /** A pass every `ms` (the `-r` interval), for an instance without a git mirror. */
  every(ms: number): void {
    clearInterval(this.#interval);
    this.#interval = setInterval(() => this.requestPass(), ms);
    this.#interval.unref();
  }

  /** Runs a pass now, or once more after the running one. */
  requestPass(): void {
    if (this.#stop.signal.aborted) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#passes().finally(() => {
      this.#running = undefined;
    });
    this.#running.catch(() => undefined);
  }

  /** Resolves when no pass is running or asked for. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** The job of the last pass that ended. */
  get lastJob(): Job | undefined {
    return this.#lastJob;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    clearInterval(this.#interval);
    clearTimeout(this.#wakeUp);
    await this.idle();
  }

  async #passes(): Promise<void> {
    do {
      this.#again = false;
      try {
        this.#lastJob = await this.#runPass();
      } catch (err) {
        this.#deps.log.error({ err }, 'filtered mirror pass failed');
      }
    } while (this.#again && !this.#stop.signal.aborted);
  }

  async #runPass(): Promise<Job> {
    const { jobs, log, filters } = this.#deps;
    const job = jobs.create('mirror', `filtered mirror of ${filters.join(', ')}`);
    const stopProgress = reportProgress(job, log, this.#deps.tty ?? false);
    this.#comesOfAge = undefined;
    try {
      const selection = await this.#select();
      this.#report(job, selection);
      await runPool(
        selection.versions,
        this.#deps.threads,
        async (selected) => job.record(withReason(await this.#store(selected), selected.reason)),
        this.#stop.signal,
      );
      job.finish(this.#stop.signal.aborted ? new Error('stopped before the end') : undefined);
    } catch (err) {
      job.finish(err);
    } finally {
      stopProgress();
      this.#scheduleWakeUp();
    }
    return job;
  }

  #select(): Promise<PolicySelection> {
    return selectWithPolicy(this.#deps.filters, {
      keep: this.#deps.keep,
      concurrency: this.#deps.threads,
      readIndex: (name) => this.#readIndex(name),
      withheldIn: (_name, body) => this.#withheldIn(body),
    });
  }

  /** Problems are failures, withheld versions skipped; both say which root wanted them. */
  #report(job: Job, selection: PolicySelection): void {
    const { versions, withheld, unmet } = selection;
    job.expect(versions.length + withheld.length + unmet.length);
    for (const problem of unmet) {
      job.record({
        name: problem.name,
        version: problem.wanted,
        status: 'failed',
        reason: problem.message,
      });
    }
    for (const skipped of withheld) {
      job.record({
        name: skipped.name,
        version: skipped.version,
        status: 'skipped',
        reason: `${skipped.withheld}; ${skipped.reason}`,
      });
    }
  }

  /** A crate's index file revalidated upstream (or the cached copy when upstream is out of reach). */
  async #readIndex(name: string): Promise<Buffer | undefined> {
    const lookup = await retryJob(
      () => this.#deps.index.get(indexPath(name), { revalidate: true }),
      this.#deps.retry ?? JOB_RETRY,
      this.#stop.signal,
    );
    return lookup.found ? lookup.file.body : undefined;
  }

  /** What the policy withholds of an index file; young versions bring a pass when of age. */
  #withheldIn(body: Buffer): WithheldVersions {
    const { policy } = this.#deps;
    if (!policy || policy.inactive) return new Map();
    const filtered = filterIndexFile(body, policy.current(), (this.#deps.now ?? Date.now)());
    if (filtered.changesAt !== undefined) {
      this.#comesOfAge = Math.min(this.#comesOfAge ?? Infinity, filtered.changesAt);
    }
    return new Map(filtered.withheld.map((v) => [v.version, describeWithheld(v.decision)]));
  }

  #store(selected: PolicySelection['versions'][number]): Promise<PackageReport> {
    const { crates, retry = JOB_RETRY } = this.#deps;
    return storeVersion({ crates, retry, signal: this.#stop.signal }, selected);
  }

  #scheduleWakeUp(): void {
    clearTimeout(this.#wakeUp);
    if (this.#comesOfAge === undefined || this.#stop.signal.aborted) return;
    const wait = this.#comesOfAge - (this.#deps.now ?? Date.now)();
    this.#wakeUp = setTimeout(
      () => this.requestPass(),
      Math.min(Math.max(0, wait), MAX_WAKE_UP_MS),
    );
    this.#wakeUp.unref();
  }
}

/** The report line of a stored version says why it is held; a failure says both. */
function withReason(report: PackageReport, reason: string): PackageReport {
  return {
    ...report,
    reason: report.reason === undefined ? reason : `${report.reason}; ${reason}`,
  };
}
