/**
 * @module
 * Statistics for one instance, in one object: the SQLite database, the batching recorder and the
 * Prometheus metrics, behind two observers (requests, upstream) and a
 * summary. The instance creates it before the caches (they report upstream requests to it),
 * then {@link Stats.connect connects} the live parts that exist only afterwards.
 */
import type { GcReport } from '../jobs/gc.ts';
import type { VerifyReport } from '../jobs/verify.ts';
import type { AppLogger } from '../logger.ts';
import type { PolicyObserver } from '../observe/policy-events.ts';
import type { ConnectionCounts, FinishedRequest, RequestObserver } from '../observe/records.ts';
import type { UpstreamObserver, UpstreamResult } from '../upstream/observed-client.ts';
import type { CacheSize } from './cache-size.ts';
import { openStatsDb, type StatsDb, statsPath } from './db.ts';
import type { JobsSource } from './jobs-source.ts';
import { Metrics } from './metrics.ts';
import { PolicyLog } from './policy-log.ts';
import { StatsRecorder } from './recorder.ts';
import {
  buildSummary,
  type GitStatusSource,
  type StatsSummary,
  type SummaryOptions,
} from './summary.ts';
import { recordSweep, recordVerify } from './upkeep.ts';

/** Options of {@link createStats}. */
export interface StatsOptions {
  /** The storage root; the database is `<storageDir>/stats.sqlite`. */
  storageDir: string;
  log?: AppLogger;
  offline?: boolean;
  /** How often pending records are written; default 1 s. */
  flushIntervalMs?: number;
  /** The cache's size now (the catalogue's totals). */
  cacheSize?: () => CacheSize;
  now?: () => number;
}

/** The parts of an instance that exist only after the caches: read live by gauges and summary. */
export interface LiveSources {
  git?: GitStatusSource;
  jobs?: JobsSource;
  inFlight?: () => { index: number; crates: number };
  /** Client connections: open, caps, and refusals and timeouts so far. */
  connections?: () => ConnectionCounts;
}

/** Statistics of one instance. */
export interface Stats {
  readonly db: StatsDb;
  readonly recorder: StatsRecorder;
  readonly metrics: Metrics;
  /** Pass to `buildApp({ observers })`. */
  readonly observe: RequestObserver;
  /** Pass to `createServices({ upstreamObserver })`. */
  readonly observeUpstream: UpstreamObserver;
  /** Connects the git mirror, the job registry and the caches' in-flight counts. */
  connect(sources: LiveSources): void;
  /** Records an expiration sweep (database totals and metrics). */
  observeSweep(report: GcReport): void;
  /** Records an integrity pass. */
  observeVerify(report: VerifyReport): void;
  /** Counts a decision of the supply-chain policy. */
  readonly observePolicy: PolicyObserver;
  /** Flushes pending records, then builds the summary. */
  summary(options?: SummaryOptions): Promise<StatsSummary>;
  /** Flushes and closes the database. Call after the server stopped answering. */
  close(): void;
}

/**
 * Opens the database under the storage root and starts the recorder.
 *
 * @example
 * const stats = createStats({ storageDir, log, cacheSize: () => catalogueSize(catalogue) });
 * const deps = createServices({ ..., upstreamObserver: stats.observeUpstream });
 * stats.connect({ git, jobs: deps.jobs });
 */
export function createStats(options: StatsOptions): Stats {
  const db = openStatsDb(statsPath(options.storageDir));
  const now = options.now ?? Date.now;
  const recorder = new StatsRecorder({
    db,
    ...(options.log && { log: options.log }),
    ...(options.flushIntervalMs !== undefined && { flushIntervalMs: options.flushIntervalMs }),
    now,
  });
  const live: LiveSources = {};
  const policyLog = new PolicyLog(now);
  const cacheSize = async () => options.cacheSize?.();
  const metrics = new Metrics({
    cacheSize,
    now,
    // Read through `live`, which connect() fills in after the caches exist.
    get git() {
      return live.git;
    },
    get jobs() {
      return live.jobs;
    },
    get inFlight() {
      return live.inFlight;
    },
    get connections() {
      return live.connections;
    },
  });
  let closed = false;
  return {
    db,
    recorder,
    metrics,
    observe(record: FinishedRequest) {
      recorder.observe(record);
      metrics.observeRequest(record);
    },
    observeUpstream(result: UpstreamResult) {
      recorder.observeUpstream(result);
      metrics.observeUpstream(result);
    },
    observeSweep(report) {
      if (!closed) recordSweep(db, report, now());
      metrics.observeSweep(report);
    },
    observePolicy: (event) => {
      metrics.observePolicy(event);
      policyLog.observe(event);
    },
    observeVerify(report) {
      if (!closed) recordVerify(db, report, now());
      metrics.observeVerify(report);
    },
    connect(sources) {
      Object.assign(live, sources);
    },
    async summary(summaryOptions = {}) {
      if (!closed) recorder.flush();
      return buildSummary(
        {
          db,
          cacheSize,
          ...live,
          ...(options.offline && { offline: true }),
          now,
          policy: () => policyLog.figures(),
        },
        summaryOptions,
      );
    },
    close() {
      if (closed) return;
      closed = true;
      recorder.close();
      db.close();
    },
  };
}
