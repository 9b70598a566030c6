/**
 * @module
 * A background job (prefetch or mirror pass): its counters, its per-package report, and a
 * snapshot shape for the API, the dashboard and metrics.
 */
import { randomUUID } from 'node:crypto';

/** What became of one package. */
export type PackageStatus = 'cached' | 'fetched' | 'failed' | 'skipped';

/** One line of a job's report. */
export interface PackageReport {
  name: string;
  version: string;
  status: PackageStatus;
  /** Why it failed or was skipped. */
  reason?: string;
  bytes?: number;
}

export type JobKind = 'prefetch' | 'mirror';
export type JobState = 'running' | 'done' | 'failed';

/** Counters of a job. */
export interface JobCounts {
  total: number;
  cached: number;
  fetched: number;
  failed: number;
  skipped: number;
  bytes: number;
}

/** A job as the API shows it. */
export interface JobSnapshot {
  id: string;
  kind: JobKind;
  description: string;
  state: JobState;
  startedAt: string;
  finishedAt?: string;
  counts: JobCounts;
  /** Packages done so far (cached + fetched + failed + skipped). */
  done: number;
  error?: string;
  /** Per-package report; failures first. Absent in list views. */
  report?: PackageReport[];
}

/**
 * Reports are capped; the counters stay exact. Failures are what a report is read for, so far
 * more of them are kept: a full mirror of millions of versions keeps its memory flat.
 */
const MAX_FAILURE_ENTRIES = 100_000;
const MAX_OTHER_ENTRIES = 10_000;

/** A running or finished job. */
export class Job {
  readonly id = randomUUID();
  readonly kind: JobKind;
  readonly description: string;
  readonly startedAt = Date.now();
  readonly counts: JobCounts = { total: 0, cached: 0, fetched: 0, failed: 0, skipped: 0, bytes: 0 };
  readonly report: PackageReport[] = [];
  #failures = 0;
  #others = 0;
  state: JobState = 'running';
  finishedAt: number | undefined;
  error: string | undefined;

  constructor(kind: JobKind, description: string) {
    this.kind = kind;
    this.description = description;
  }

  /** Adds to the number of packages the job will look at. */
  expect(count: number): void {
    this.counts.total += count;
  }

  /** Records what became of one package. */
  record(entry: PackageReport): void {
    this.counts[entry.status] += 1;
    this.counts.bytes += entry.bytes ?? 0;
    if (
      entry.status === 'failed'
        ? this.#failures++ < MAX_FAILURE_ENTRIES
        : this.#others++ < MAX_OTHER_ENTRIES
    ) {
      this.report.push(entry);
    }
  }

  /** Packages done so far. */
  get done(): number {
    const { cached, fetched, failed, skipped } = this.counts;
    return cached + fetched + failed + skipped;
  }

  finish(error?: unknown): void {
    this.finishedAt = Date.now();
    this.state = error === undefined ? 'done' : 'failed';
    if (error !== undefined) this.error = (error as Error).message ?? String(error);
  }

  /** The API view; `withReport` adds the per-package lines. */
  snapshot(withReport = false): JobSnapshot {
    return {
      id: this.id,
      kind: this.kind,
      description: this.description,
      state: this.state,
      startedAt: new Date(this.startedAt).toISOString(),
      ...(this.finishedAt !== undefined && { finishedAt: new Date(this.finishedAt).toISOString() }),
      counts: { ...this.counts },
      done: this.done,
      ...(this.error !== undefined && { error: this.error }),
      ...(withReport && { report: sortedReport(this.report) }),
    };
  }
}

function sortedReport(report: PackageReport[]): PackageReport[] {
  const order: Record<PackageStatus, number> = { failed: 0, fetched: 1, skipped: 2, cached: 3 };
  return [...report].sort((a, b) => order[a.status] - order[b.status]);
}

/** The jobs of one instance, newest first; old finished ones are forgotten past a limit. */
export class JobRegistry {
  readonly #jobs = new Map<string, Job>();
  readonly #limit: number;

  constructor(limit = 100) {
    this.#limit = limit;
  }

  /** Creates and remembers a job. */
  create(kind: JobKind, description: string): Job {
    const job = new Job(kind, description);
    this.#jobs.set(job.id, job);
    for (const [id, old] of this.#jobs) {
      if (this.#jobs.size <= this.#limit) break;
      if (old.state !== 'running') this.#jobs.delete(id);
    }
    return job;
  }

  get(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** Snapshots of every remembered job, newest first. */
  list(): JobSnapshot[] {
    return [...this.#jobs.values()].reverse().map((job) => job.snapshot());
  }

  /** Jobs still running. */
  running(): Job[] {
    return [...this.#jobs.values()].filter((job) => job.state === 'running');
  }
}
