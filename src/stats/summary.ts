/**
 * @module
 * The statistics summary: what `GET /api/v1/stats` answers, the dashboard draws and
 * `cargo-cacher stats` prints. Built from the database plus the live parts of an instance
 * (cache size, git mirror, jobs), each optional so the CLI can build it from the file alone.
 */
import { VERSION } from '../version.ts';
import type { CacheSize } from './cache-size.ts';
import type { StatsDb } from './db.ts';
import type { JobsSource } from './jobs-source.ts';
import type { PolicyFigures } from './policy-log.ts';
import {
  countOf,
  type Health,
  hitRatio,
  overallHealth,
  type RecentEvent,
  readCrateCounts,
  readDaySeries,
  readMinuteSeries,
  readRecentEvents,
  readSince,
  readTopCrates,
  readTopToolchains,
  readTotals,
  readUpstream,
  type SeriesPoint,
  type TopCrate,
  type TopToolchain,
  type UpstreamSourceStats,
} from './queries.ts';
import type { RequestSums } from './rows.ts';
import { readUpkeep, type UpkeepFigures } from './upkeep.ts';

const NO_POLICY_FIGURES: PolicyFigures = {
  withheld: [],
  blocked: [],
  purged: [],
  totals: { withheld: 0, blocked: 0, purged: 0 },
};

/** The git mirror's state, as `GitMirror.status()` reports it. */
export interface GitStatusSource {
  status(): { ready: boolean; upstream: string; lastSuccessAt?: number; lastError?: string };
}

/** The live parts of an instance that the summary reads. */
export interface SummarySources {
  db: StatsDb;
  cacheSize?: () => Promise<CacheSize | undefined>;
  git?: GitStatusSource;
  jobs?: JobsSource;
  inFlight?: () => { index: number; crates: number };
  offline?: boolean;
  now?: () => number;
  /** The supply-chain policy's recent decisions (a running server only). */
  policy?: () => PolicyFigures;
}

/** What the caller asks for. */
export interface SummaryOptions {
  /** The proxy's public URL, for the cargo configuration snippets. */
  publicUrl?: string;
  /** Whether the git index is served (the git snippet is `null` otherwise). */
  gitEnabled?: boolean;
  /** Per-minute points; default 180 (3 hours). */
  minutes?: number;
  /** Per-day points; default 90. */
  days?: number;
}

/** Request figures of one kind, or of all kinds. */
export interface KindFigures {
  requests: number;
  hits: number;
  misses: number;
  revalidated: number;
  stale: number;
  notFound: number;
  errors: number;
  bytesSent: number;
  bytesUpstream: number;
  bytesSaved: number;
  avgDurationMs: number | null;
  avgTtfbMs: number | null;
}

/** The whole summary. Timestamps are ms since the epoch. */
export interface StatsSummary {
  version: string;
  generatedAt: number;
  since: number | null;
  registry: { publicUrl: string | null; sparse: string | null; git: string | null };
  totals: KindFigures & { hitRatio: number | null; crateDownloads: number; crateVersions: number };
  byKind: Record<string, KindFigures>;
  cache: {
    bytes: number;
    objects: number;
    crates: AreaFigures;
    index: AreaFigures;
    toolchains: AreaFigures;
    measuredAt: number | null;
  };
  topCrates: TopCrate[];
  /** Toolchain releases whose archives were served most (rustup through `/dist`). */
  topToolchains: TopToolchain[];
  recent: { misses: RecentEvent[]; errors: RecentEvent[]; upstream: RecentEvent[] };
  series: { minutes: SeriesPoint[]; days: SeriesPoint[] };
  upstream: { health: Health | 'offline'; sources: UpstreamSourceStats[] };
  git: GitFigures;
  inFlight: { index: number; crates: number };
  jobs: JobFigures[];
  /** Expiration and integrity totals. */
  upkeep: UpkeepFigures;
  /** The supply-chain policy's recent decisions; empty lists from the command line. */
  policy: PolicyFigures;
}

interface AreaFigures {
  objects: number;
  bytes: number;
}

/** The git index mirror's state. */
export interface GitFigures {
  enabled: boolean;
  ready: boolean;
  upstream: string | null;
  lastSuccessAt: number | null;
  /** Seconds since the last successful refresh. */
  ageSeconds: number | null;
  lastError: string | null;
}

/** A job with its progress. */
export interface JobFigures {
  id: string;
  kind: string;
  description: string;
  state: string;
  startedAt: string;
  done: number;
  total: number;
  failed: number;
}

const MAX_MINUTES = 48 * 60;
const MAX_DAYS = 3660;

/** Builds the summary. */
export async function buildSummary(
  sources: SummarySources,
  options: SummaryOptions = {},
): Promise<StatsSummary> {
  const now = (sources.now ?? Date.now)();
  const { db } = sources;
  const totals = readTotals(db);
  const crates = readCrateCounts(db);
  const size = await sources.cacheSize?.();
  const upstream = readUpstream(db, now);
  return {
    version: VERSION,
    generatedAt: now,
    since: readSince(db),
    registry: registryUrls(options),
    totals: {
      ...figures(totals.byOutcome),
      hitRatio: hitRatio(totals),
      crateDownloads: crates.downloads,
      crateVersions: crates.versions,
    },
    byKind: Object.fromEntries(Object.entries(totals.byKind).map(([k, v]) => [k, figures(v)])),
    cache: cacheFigures(size),
    topCrates: readTopCrates(db),
    topToolchains: readTopToolchains(db),
    recent: {
      misses: readRecentEvents(db, 'miss'),
      errors: readRecentEvents(db, 'error'),
      upstream: readRecentEvents(db, 'upstream'),
    },
    series: {
      minutes: readMinuteSeries(db, now, clamp(options.minutes ?? 180, 1, MAX_MINUTES)),
      days: readDaySeries(db, now, clamp(options.days ?? 90, 1, MAX_DAYS)),
    },
    upstream: {
      health: sources.offline ? 'offline' : overallHealth(upstream.map((s) => s.health)),
      sources: upstream,
    },
    git: gitFigures(sources.git, now),
    inFlight: sources.inFlight?.() ?? { index: 0, crates: 0 },
    jobs: jobFigures(sources.jobs),
    upkeep: readUpkeep(db),
    policy: sources.policy?.() ?? NO_POLICY_FIGURES,
  };
}

/** The newest jobs with their progress. */
function jobFigures(jobs: JobsSource | undefined): JobFigures[] {
  return (jobs?.list() ?? []).slice(0, 20).map((job) => ({
    id: job.id,
    kind: job.kind,
    description: job.description,
    state: job.state,
    startedAt: job.startedAt,
    done: job.done,
    total: job.counts.total,
    failed: job.counts.failed,
  }));
}

/** The seed's `/stats.json`: crate downloads only, all time. */
export function seedStats(summary: StatsSummary) {
  const crate = summary.byKind.crate;
  return {
    downloads: summary.totals.crateDownloads,
    hits: crate?.hits ?? 0,
    misses: crate?.misses ?? 0,
    bandwidth_saved: crate?.bytesSaved ?? 0,
  };
}

/** The cargo source-replacement snippets for both protocols. */
export function registryUrls(options: SummaryOptions): StatsSummary['registry'] {
  const base = options.publicUrl?.replace(/\/+$/, '');
  if (base === undefined) return { publicUrl: null, sparse: null, git: null };
  return {
    publicUrl: base,
    sparse: `sparse+${base}/index/`,
    git: options.gitEnabled ? `${base}/index` : null,
  };
}

function figures(sums: Record<string, RequestSums>): KindFigures {
  let requests = 0;
  let bytesSent = 0;
  let bytesUpstream = 0;
  let bytesSaved = 0;
  let durationMs = 0;
  let ttfbMs = 0;
  for (const s of Object.values(sums)) {
    requests += s.requests;
    bytesSent += s.bytesSent;
    bytesUpstream += s.bytesUpstream;
    bytesSaved += s.bytesSaved;
    durationMs += s.durationMs;
    ttfbMs += s.ttfbMs;
  }
  return {
    requests,
    hits: countOf(sums, 'hit'),
    misses: countOf(sums, 'miss'),
    revalidated: countOf(sums, 'revalidated'),
    stale: countOf(sums, 'stale'),
    notFound: countOf(sums, 'not-found'),
    errors: countOf(sums, 'error'),
    bytesSent,
    bytesUpstream,
    bytesSaved,
    avgDurationMs: requests > 0 ? durationMs / requests : null,
    avgTtfbMs: requests > 0 ? ttfbMs / requests : null,
  };
}

function cacheFigures(size: CacheSize | undefined): StatsSummary['cache'] {
  const crates = size?.crates ?? { objects: 0, bytes: 0 };
  const index = size?.index ?? { objects: 0, bytes: 0 };
  const toolchains = size?.toolchains ?? { objects: 0, bytes: 0 };
  return {
    bytes: crates.bytes + index.bytes + toolchains.bytes,
    objects: crates.objects + index.objects + toolchains.objects,
    crates,
    index,
    toolchains,
    measuredAt: size?.measuredAt ?? null,
  };
}

function gitFigures(git: GitStatusSource | undefined, now: number): GitFigures {
  if (!git) {
    return {
      enabled: false,
      ready: false,
      upstream: null,
      lastSuccessAt: null,
      ageSeconds: null,
      lastError: null,
    };
  }
  const status = git.status();
  return {
    enabled: true,
    ready: status.ready,
    upstream: status.upstream,
    lastSuccessAt: status.lastSuccessAt ?? null,
    ageSeconds:
      status.lastSuccessAt === undefined ? null : Math.max(0, (now - status.lastSuccessAt) / 1000),
    lastError: status.lastError ?? null,
  };
}

function clamp(value: number, min: number, max: number): number {
  return Number.isFinite(value) ? Math.min(Math.max(Math.trunc(value), min), max) : min;
}
