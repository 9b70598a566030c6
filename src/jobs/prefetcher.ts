/**
 * @module
 * Prefetch jobs: warm every registry package a lock file (or list) names, `-t` at a time, in
 * the background while the server answers requests.
 */
import type { CrateCache } from '../cache/crate-cache.ts';
import type { IndexCache } from '../cache/index-cache.ts';
import type { AppLogger } from '../logger.ts';
import { JOB_RETRY, type JobRetry } from '../upstream/retry-policy.ts';
import type { Job, JobRegistry } from './job.ts';
import type { PrefetchRequest } from './prefetch-input.ts';
import { reportProgress } from './progress.ts';
import { warmVersion } from './warm-version.ts';
import { runPool } from './worker-pool.ts';

/** What a {@link Prefetcher} needs. */
export interface PrefetcherDeps {
  index: IndexCache;
  crates: CrateCache;
  jobs: JobRegistry;
  threads: number;
  log: AppLogger;
  retry?: JobRetry;
}

/** Starts and tracks prefetch jobs. */
export class Prefetcher {
  readonly #deps: PrefetcherDeps;
  readonly #running = new Set<Promise<Job>>();
  readonly #stop = new AbortController();

  constructor(deps: PrefetcherDeps) {
    this.#deps = deps;
  }

  /** Starts a job in the background and returns it at once. */
  start(request: PrefetchRequest, description: string): Job {
    const job = this.#deps.jobs.create('prefetch', description);
    const running = this.#run(job, request, false);
    this.#running.add(running);
    running.finally(() => this.#running.delete(running)).catch(() => undefined);
    return job;
  }

  /** Runs a job to the end; `tty` shows a progress bar instead of log lines. */
  async run(
    request: PrefetchRequest,
    description: string,
    options: { tty?: boolean } = {},
  ): Promise<Job> {
    return this.#run(
      this.#deps.jobs.create('prefetch', description),
      request,
      options.tty ?? false,
    );
  }

  /** Stops taking new packages and waits for the running ones. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#running);
  }

  async #run(job: Job, request: PrefetchRequest, tty: boolean): Promise<Job> {
    const { log, threads } = this.#deps;
    job.expect(request.crates.length + request.skipped.length);
    for (const pkg of request.skipped) {
      job.record({
        name: pkg.name,
        version: pkg.version,
        status: 'skipped',
        reason: `${pkg.kind} package`,
      });
    }
    const stopProgress = reportProgress(job, log, tty);
    const warm = {
      index: this.#deps.index,
      crates: this.#deps.crates,
      log,
      retry: this.#deps.retry ?? JOB_RETRY,
      signal: this.#stop.signal,
    };
    try {
      await runPool(
        request.crates,
        threads,
        async (pkg) => job.record(await warmVersion(warm, pkg)),
        this.#stop.signal,
      );
      job.finish(this.#stop.signal.aborted ? new Error('stopped before the end') : undefined);
    } catch (err) {
      job.finish(err);
    } finally {
      stopProgress();
    }
    return job;
  }
}
