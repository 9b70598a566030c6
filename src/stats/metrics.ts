/**
 * @module
 * Prometheus metrics (prom-client) in a private registry per instance, so several instances can
 * run in one process (tests do). Counters and histograms are fed by the request and upstream
 * observers; gauges (cache size, in-flight fetches, git index age, job progress) are read at
 * scrape time from the instance. Every name starts with `cargo_cacher_`, besides prom-client's
 * standard `process_*` and `nodejs_*` metrics.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { GcReport } from '../jobs/gc.ts';
import type { VerifyReport } from '../jobs/verify.ts';
import type { PolicyEvent } from '../observe/policy-events.ts';
import type { ConnectionCounts, FinishedRequest } from '../observe/records.ts';
import type { UpstreamResult } from '../upstream/observed-client.ts';
import { VERSION } from '../version.ts';
import type { CacheSize } from './cache-size.ts';
import type { JobsSource } from './jobs-source.ts';
import { DURATION_BUCKETS, RequestMetrics } from './request-metrics.ts';
import type { GitStatusSource } from './summary.ts';

/** What the scrape-time gauges read. */
export interface MetricsSources {
  cacheSize?: () => Promise<CacheSize | undefined>;
  git?: GitStatusSource;
  jobs?: JobsSource;
  inFlight?: () => { index: number; crates: number };
  connections?: () => ConnectionCounts;
  now?: () => number;
}

/** The metrics of one instance. */
export class Metrics {
  readonly registry = new Registry();
  readonly #request: RequestMetrics;
  readonly #upstream: ReturnType<typeof upstreamMetrics>;
  readonly #upkeep: ReturnType<typeof upkeepMetrics>;
  readonly #policy: ReturnType<typeof policyMetrics>;

  constructor(sources: MetricsSources = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'cargo_cacher_build_info',
      help: 'Always 1; the version label says which cargo-cacher runs.',
      labelNames: ['version'],
      registers,
    }).set({ version: VERSION }, 1);
    this.#request = new RequestMetrics(registers);
    this.#upstream = upstreamMetrics(registers);
    this.#upkeep = upkeepMetrics(registers);
    this.#policy = policyMetrics(registers);
    registerGauges(registers, sources);
  }

  /** The request observer. */
  readonly observeRequest = (record: FinishedRequest): void => {
    this.#request.observe(record);
  };

  /** The upstream observer. */
  readonly observeUpstream = (result: UpstreamResult): void => {
    const { source } = result;
    const m = this.#upstream;
    // A body that broke off was counted as a request when its headers arrived.
    if (result.failure !== 'body') {
      m.requests.inc({ source });
      m.latency.observe({ source }, result.latencyMs / 1000);
    }
    if (result.failure) m.errors.inc({ source, reason: result.failure });
  };

  /** Counts what an expiration sweep removed. */
  readonly observeSweep = (report: GcReport): void => {
    if (report.dryRun) return;
    for (const removal of report.removed) {
      this.#upkeep.evictions.inc({ reason: removal.reason });
      this.#upkeep.evictedBytes.inc(removal.size);
    }
  };

  /** Counts a decision of the supply-chain policy. */
  readonly observePolicy = (event: PolicyEvent): void => {
    this.#policy[event.kind].inc({ reason: event.reason });
  };

  /** Counts what an integrity pass found. */
  readonly observeVerify = (report: VerifyReport): void => {
    this.#upkeep.checked.inc(report.checked);
    for (const problem of report.problems) this.#upkeep.problems.inc({ kind: problem.kind });
  };

  /** The text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of {@link Metrics.text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Counters and histograms fed by the upstream observer. */
function upstreamMetrics(registers: Registry[]) {
  return {
    requests: new Counter({
      name: 'cargo_cacher_upstream_requests_total',
      help: 'Requests sent upstream, by source (index, crate).',
      labelNames: ['source'],
      registers,
    }),
    errors: new Counter({
      name: 'cargo_cacher_upstream_errors_total',
      help: 'Failed upstream requests, by source and reason.',
      labelNames: ['source', 'reason'],
      registers,
    }),
    latency: new Histogram({
      name: 'cargo_cacher_upstream_latency_seconds',
      help: 'Time until upstream response headers (or failure).',
      labelNames: ['source'],
      buckets: DURATION_BUCKETS,
      registers,
    }),
  };
}

/** Counters fed by the supply-chain policy's decisions. */
function policyMetrics(registers: Registry[]): Record<PolicyEvent['kind'], Counter<'reason'>> {
  return {
    withheld: new Counter({
      name: 'cargo_cacher_policy_withheld_total',
      help: 'Versions withheld from served index files, by reason (young, denied).',
      labelNames: ['reason'],
      registers,
    }),
    blocked: new Counter({
      name: 'cargo_cacher_policy_blocked_total',
      help: 'Downloads refused by the supply-chain policy, by reason (young, denied).',
      labelNames: ['reason'],
      registers,
    }),
    purged: new Counter({
      name: 'cargo_cacher_policy_purged_total',
      help: 'Cached crates purged because upstream removed them, by reason (removed).',
      labelNames: ['reason'],
      registers,
    }),
  };
}

/** Counters fed by expiration sweeps and integrity passes. */
function upkeepMetrics(registers: Registry[]) {
  return {
    evictions: new Counter({
      name: 'cargo_cacher_evictions_total',
      help: 'Files removed by expiration, by reason (expired, over-budget, unused-index).',
      labelNames: ['reason'],
      registers,
    }),
    evictedBytes: new Counter({
      name: 'cargo_cacher_evicted_bytes_total',
      help: 'Bytes removed by expiration.',
      registers,
    }),
    checked: new Counter({
      name: 'cargo_cacher_integrity_checked_total',
      help: 'Cached crates re-hashed by integrity checks.',
      registers,
    }),
    problems: new Counter({
      name: 'cargo_cacher_integrity_problems_total',
      help: 'Cached crates found wrong, by kind (mismatch, unreadable, not-in-index).',
      labelNames: ['kind'],
      registers,
    }),
  };
}

/** Gauges whose values are read from the instance when scraped. */
function registerGauges(registers: Registry[], sources: MetricsSources): void {
  const now = sources.now ?? Date.now;
  new Gauge({
    name: 'cargo_cacher_cache_size_bytes',
    help: 'Bytes stored in the cache, by area (crates, index, toolchains), from the catalogue.',
    labelNames: ['area'],
    registers,
    async collect() {
      const size = await sources.cacheSize?.();
      if (!size) return;
      this.set({ area: 'crates' }, size.crates.bytes);
      this.set({ area: 'index' }, size.index.bytes);
      this.set({ area: 'toolchains' }, size.toolchains.bytes);
    },
  });
  new Gauge({
    name: 'cargo_cacher_cache_objects',
    help: 'Files stored in the cache, by area (crates, index, toolchains).',
    labelNames: ['area'],
    registers,
    async collect() {
      const size = await sources.cacheSize?.();
      if (!size) return;
      this.set({ area: 'crates' }, size.crates.objects);
      this.set({ area: 'index' }, size.index.objects);
      this.set({ area: 'toolchains' }, size.toolchains.objects);
    },
  });
  new Gauge({
    name: 'cargo_cacher_inflight_fetches',
    help: 'Upstream fetches running now, by cache (index, crate).',
    labelNames: ['cache'],
    registers,
    collect() {
      const inFlight = sources.inFlight?.() ?? { index: 0, crates: 0 };
      this.set({ cache: 'index' }, inFlight.index);
      this.set({ cache: 'crate' }, inFlight.crates);
    },
  });
  registerGitGauges(registers, sources, now);
  registerJobGauges(registers, sources);
  registerConnectionMetrics(registers, sources);
}

/** Client connections, read from the connection guard when scraped. */
function registerConnectionMetrics(registers: Registry[], sources: MetricsSources): void {
  new Gauge({
    name: 'cargo_cacher_client_connections',
    help: 'Client TCP connections open now.',
    registers,
    collect() {
      this.set(sources.connections?.().open ?? 0);
    },
  });
  new Gauge({
    name: 'cargo_cacher_client_connections_max',
    help: 'Connection caps in force, by scope (total from --max-connections, per_ip).',
    labelNames: ['scope'],
    registers,
    collect() {
      const counts = sources.connections?.();
      if (!counts) return;
      this.set({ scope: 'total' }, counts.maxConnections);
      this.set({ scope: 'per_ip' }, counts.maxConnectionsPerIp);
    },
  });
  new Counter({
    name: 'cargo_cacher_client_connections_closed_total',
    help:
      'Client connections refused or closed by a limit: refused_per_ip, refused_total, evicted ' +
      '(closed to admit another client at the total cap), idle_timeout, send_timeout (the client ' +
      'stopped reading), body_timeout (HTTP/2 request body too slow).',
    labelNames: ['reason'],
    registers,
    collect() {
      const events = sources.connections?.().events;
      if (!events) return;
      this.reset();
      for (const [reason, count] of Object.entries(events)) this.inc({ reason }, count);
    },
  });
}

/**
 * Read at scrape time (`git` is connected after the metrics exist). The `upstream` label keeps
 * them absent rather than 0 with --no-git, and the age absent before the first refresh.
 */
function registerGitGauges(
  registers: Registry[],
  sources: MetricsSources,
  now: () => number,
): void {
  new Gauge({
    name: 'cargo_cacher_git_index_ready',
    help: '1 once the git index mirror can be served.',
    labelNames: ['upstream'],
    registers,
    collect() {
      this.reset();
      const status = sources.git?.status();
      if (status) this.set({ upstream: status.upstream }, status.ready ? 1 : 0);
    },
  });
  new Gauge({
    name: 'cargo_cacher_git_index_age_seconds',
    help: 'Seconds since the last successful refresh of the git index mirror.',
    labelNames: ['upstream'],
    registers,
    collect() {
      this.reset();
      const status = sources.git?.status();
      if (status?.lastSuccessAt === undefined) return;
      this.set({ upstream: status.upstream }, (now() - status.lastSuccessAt) / 1000);
    },
  });
}

/** Progress of running prefetch and mirror jobs, one series per job (jobs are few). */
function registerJobGauges(registers: Registry[], sources: MetricsSources): void {
  const running = () => (sources.jobs?.list() ?? []).filter((job) => job.state === 'running');
  const perJob = (
    name: string,
    help: string,
    value: (job: ReturnType<typeof running>[number]) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['job', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const job of running()) this.set({ job: job.id, kind: job.kind }, value(job));
      },
    });
  new Gauge({
    name: 'cargo_cacher_jobs_running',
    help: 'Prefetch and mirror jobs running now, by kind.',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, number>([
        ['prefetch', 0],
        ['mirror', 0],
      ]);
      for (const job of running()) counts.set(job.kind, (counts.get(job.kind) ?? 0) + 1);
      for (const [kind, count] of counts) this.set({ kind }, count);
    },
  });
  perJob(
    'cargo_cacher_job_packages_total',
    'Packages a running job will handle.',
    (job) => job.counts.total,
  );
  perJob(
    'cargo_cacher_job_packages_done',
    'Packages a running job has handled.',
    (job) => job.done,
  );
  perJob(
    'cargo_cacher_job_packages_failed',
    'Packages a running job failed to fetch.',
    (job) => job.counts.failed,
  );
}
