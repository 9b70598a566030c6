/**
 * @module
 * The statistics summary as plain text, for `cargo-cacher stats`: the dashboard's figures in
 * the same order, readable in an 80-column terminal and in a CI log.
 */
import {
  formatAgo,
  formatBytes,
  formatCount,
  formatMs,
  formatPercent,
  sparkline,
} from './format.ts';
import type { StatsSummary } from './summary.ts';

/** Where the report came from, for its title line. */
export interface ReportContext {
  storageDir: string;
}

/** Renders the summary; lines end with `\n`. */
export function renderTextReport(summary: StatsSummary, context: ReportContext): string {
  const now = summary.generatedAt;
  const t = summary.totals;
  const since = summary.since === null ? '' : ` since ${isoMinute(summary.since)}`;
  const lines = [
    `cargo-cacher ${summary.version} statistics for ${context.storageDir}${since}`,
    '',
    row(
      'Hit ratio',
      `${formatPercent(t.hitRatio)}  (${formatCount(t.hits)} hits, ${formatCount(t.misses)} misses)`,
    ),
    row('Bytes saved', `${formatBytes(t.bytesSaved)} of ${formatBytes(t.bytesSent)} served`),
    row(
      'Requests',
      `${formatCount(t.requests)}  (${formatCount(t.crateDownloads)} crate downloads, ${formatCount(t.errors)} errors)`,
    ),
    row(
      'Cache size',
      `${formatBytes(summary.cache.bytes)}  (${formatCount(summary.cache.crates.objects)} crates, ${formatCount(summary.cache.index.objects)} index files, ${formatCount(summary.cache.toolchains.objects)} toolchain files)`,
    ),
    row(
      'Expiration',
      `${formatCount(summary.upkeep.evictedFiles)} files evicted (${formatBytes(summary.upkeep.evictedBytes)}), ${formatCount(summary.upkeep.integrityProblems)} integrity problems found`,
    ),
    row('Upstream', upstreamLine(summary)),
    row('Git index', gitLine(summary, now)),
    ...jobLines(summary),
    '',
    'Top crates',
    ...(summary.topCrates.length === 0
      ? ['  none downloaded yet']
      : summary.topCrates.map(
          (c) =>
            `  ${c.name.padEnd(32)} ${formatCount(c.downloads).padStart(10)}  (${c.versions} version${c.versions === 1 ? '' : 's'})`,
        )),
    ...toolchainLines(summary),
    '',
    'Recent misses and errors',
    ...eventLines(summary, now),
    '',
    `Requests, last 3 hours   |${sparkline(
      bucketed(
        summary.series.minutes.map((p) => p.requests),
        60,
      ),
    )}|`,
    `Requests, last 90 days   |${sparkline(
      bucketed(
        summary.series.days.map((p) => p.requests),
        60,
      ),
    )}|`,
  ];
  return `${lines.join('\n')}\n`;
}

function row(label: string, value: string): string {
  return `  ${label.padEnd(13)} ${value}`;
}

function upstreamLine(summary: StatsSummary): string {
  const { health, sources } = summary.upstream;
  if (sources.length === 0) return health === 'offline' ? 'offline' : 'no request yet';
  const parts = sources.map(
    (s) =>
      `${s.source} ${s.health}: ${formatCount(s.requests)} req, ${formatCount(s.failures)} failed, avg ${formatMs(s.avgLatencyMs)}`,
  );
  return `${health} (24 h: ${parts.join('; ')})`;
}

function gitLine(summary: StatsSummary, now: number): string {
  const git = summary.git;
  if (!git.enabled) return 'not mirrored';
  const state = git.ready ? 'ready' : 'not ready';
  const refreshed =
    git.lastSuccessAt === null ? 'never fetched' : `fetched ${formatAgo(git.lastSuccessAt, now)}`;
  return `${state}, ${refreshed}${git.lastError ? ` (last error: ${git.lastError})` : ''}`;
}

function jobLines(summary: StatsSummary): string[] {
  return summary.jobs
    .filter((job) => job.state === 'running')
    .map((job) =>
      row(
        'Job',
        `${job.description}: ${formatCount(job.done)}/${formatCount(job.total)}, ${formatCount(job.failed)} failed`,
      ),
    );
}

function eventLines(summary: StatsSummary, now: number): string[] {
  const events = [
    ...summary.recent.misses.map((e) => ({ ...e, type: 'miss' })),
    ...summary.recent.errors.map((e) => ({ ...e, type: 'error' })),
    ...summary.recent.upstream.map((e) => ({ ...e, type: 'upstream' })),
  ]
    .sort((a, b) => b.at - a.at)
    .slice(0, 10);
  if (events.length === 0) return ['  none'];
  return events.map((e) => {
    const detail = [e.status >= 300 ? `HTTP ${e.status}` : '', e.detail ?? '']
      .filter(Boolean)
      .join(' ');
    return `  ${formatAgo(e.at, now).padEnd(11)} ${e.type.toUpperCase().padEnd(8)} ${e.kind.padEnd(12)} ${e.target}${detail ? `  ${detail}` : ''}`;
  });
}

/** Sums `values` into at most `width` buckets, so a sparkline fits the terminal. */
export function bucketed(values: readonly number[], width: number): number[] {
  if (values.length <= width) return [...values];
  const size = Math.ceil(values.length / width);
  const out: number[] = [];
  for (let i = 0; i < values.length; i += size) {
    out.push(values.slice(i, i + size).reduce((a, b) => a + b, 0));
  }
  return out;
}

function isoMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The top toolchain releases, when rustup fetched any through the cache. */
function toolchainLines(summary: StatsSummary): string[] {
  if (summary.topToolchains.length === 0) return [];
  return [
    '',
    'Top toolchains',
    ...summary.topToolchains.map(
      (c) =>
        `  ${c.release.padEnd(32)} ${formatCount(c.downloads).padStart(10)}  (${formatBytes(c.bytesSent)})`,
    ),
  ];
}
