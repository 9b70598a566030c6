/**
 * @module
 * What statistics need to know about background jobs (prefetch, full mirror): a list of jobs
 * with their progress. The job registry provides it; the dashboard, the API and the
 * `cargo_cacher_job_*` gauges read it. Statistics never start or change jobs.
 */

/** A job's progress, as the job registry reports it. */
export interface JobProgress {
  id: string;
  kind: string;
  description: string;
  /** `running`, `done` or `failed`. */
  state: string;
  /** ISO timestamp. */
  startedAt: string;
  /** Packages handled so far. */
  done: number;
  counts: { total: number; failed: number };
}

/** Lists jobs, newest first. */
export interface JobsSource {
  list(): readonly JobProgress[];
}

/** The jobs source of an instance without jobs. */
export const NO_JOBS: JobsSource = { list: () => [] };
