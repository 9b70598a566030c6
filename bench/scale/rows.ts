/**
 * @module
 * The scale report: each figure at the smallest and the largest size, the ratio large ÷ small,
 * and its goals (a ratio for costs that must not grow with the cache, an absolute bound at the
 * large size).
 */
import type { Limit, Row } from '../lib/report.ts';
import { summarize } from '../lib/system.ts';
import type { BudgetResult, OvershootResult } from './budget.ts';
import type { MirrorResult, RestartResult } from './phases.ts';

/** Everything measured at one size. */
export interface SizeResult {
  size: number;
  mirror: MirrorResult;
  restart: RestartResult;
  gcDryRun: { seconds: number; peakRssBytes: number; summary: string };
  overshoot: OvershootResult;
  overAtStart: BudgetResult;
}

const MB = 1e6;

/** How one figure is read out of a size's results and judged. */
interface Figure {
  what: string;
  unit: string;
  value: (r: SizeResult) => number;
  higherIsBetter?: boolean;
  /** Ratio goal, large ÷ small. */
  ratio?: number;
  /** Absolute goal at the large size. */
  limit?: Limit;
  /** Values below this count as this in the ratio (idle CPU near 0 would make it meaningless). */
  floor?: number;
}

const FIGURES: Figure[] = [
  {
    what: `full mirror, -t 16`,
    unit: 'versions/s',
    value: (r) => r.mirror.perSecond,
    higherIsBetter: true,
    limit: { op: '≥', value: 800 },
  },
  {
    what: 'full mirror, peak RSS',
    unit: 'MB',
    value: (r) => r.mirror.peakRssBytes / MB,
    limit: { op: '<', value: 200 },
  },
  {
    what: 'restart to first /health 200',
    unit: 'ms',
    value: (r) => r.restart.healthMs,
    ratio: 1.5,
    limit: { op: '≤', value: 2000 },
    floor: 50,
  },
  {
    what: 'restart to first cached index file',
    unit: 'ms',
    value: (r) => r.restart.indexMs,
    ratio: 1.5,
    limit: { op: '≤', value: 2000 },
    floor: 50,
  },
  {
    what: 'first /metrics after restart',
    unit: 'ms',
    value: (r) => r.restart.firstMetricsMs,
    ratio: 1.5,
    floor: 5,
  },
  { what: '/metrics p50 of 50', unit: 'ms', value: (r) => r.restart.metricsP50Ms, floor: 1 },
  {
    what: '/metrics p99 of 50',
    unit: 'ms',
    value: (r) => r.restart.metricsP99Ms,
    ratio: 1.5,
    limit: { op: '≤', value: 50 },
    floor: 5,
  },
  {
    what: 'idle CPU, a /metrics scrape every 10 s',
    unit: '% of a core',
    value: (r) => r.restart.idleCpuPercent,
    ratio: 1.5,
    limit: { op: '<', value: 1 },
    floor: 0.2,
  },
  {
    what: 'over --max-size of 50 % at start, spawn to under',
    unit: 's',
    value: (r) => r.overAtStart.seconds,
    limit: { op: '≤', value: 5 },
    floor: 0.5,
  },
  {
    what: 'over --max-size after re-downloads, to under',
    unit: 's',
    value: (r) => r.overshoot.seconds,
    limit: { op: '≤', value: 5 },
    floor: 0.5,
  },
  {
    what: 'gc --dry-run --max-size 50 %, wall',
    unit: 's',
    value: (r) => r.gcDryRun.seconds,
    floor: 0.1,
  },
  { what: 'gc --dry-run, peak RSS', unit: 'MB', value: (r) => r.gcDryRun.peakRssBytes / MB },
  { what: 'gc removing 5 %, wall', unit: 's', value: (r) => r.overshoot.gcSeconds, floor: 0.1 },
];

/** One row per figure: `large` as the subject, `small` as the baseline. */
export function scaleRows(small: SizeResult, large: SizeResult): Row[] {
  return FIGURES.map((figure) => {
    const a = figure.value(small);
    const b = figure.value(large);
    const floor = figure.floor ?? 0;
    return {
      what: figure.what,
      unit: figure.unit,
      subject: summarize([b]),
      baseline: summarize([a]),
      baselineName: `${small.size}`,
      ratio: summarize([Math.max(b, floor) / Math.max(a, floor)]),
      higherIsBetter: figure.higherIsBetter ?? false,
      ...(figure.ratio !== undefined && { goal: figure.ratio }),
      ...(figure.limit !== undefined && { limit: figure.limit }),
    };
  });
}

/** One note line per size with its raw facts. */
export function sizeNote(r: SizeResult): string {
  const mb = (bytes: number) => (bytes / MB).toFixed(1);
  const s = (seconds: number) =>
    Number.isFinite(seconds) ? `${seconds.toFixed(1)} s` : 'not within the wait';
  return [
    `**${r.size} versions**: mirror fetched ${r.mirror.fetched} (${r.mirror.failed} failed${r.mirror.notFetched.length > 0 ? `; not fetched: ${r.mirror.notFetched.join(', ')}` : ''}) in ${r.mirror.jobSeconds.toFixed(1)} s`,
    `first /metrics reported ${r.restart.crateBytes === undefined ? 'no crate bytes' : `${mb(r.restart.crateBytes)} MB of crates`}`,
    `gc --dry-run: "${r.gcDryRun.summary}"`,
    `5 % gc removed ${r.overshoot.gcRemoved} files; re-downloaded ${r.overshoot.downloaded} (${r.overshoot.downloadFailures} failed) over a budget of ${mb(r.overshoot.budgetBytes)} MB (held ${mb(r.overshoot.heldBytes)} MB): ${s(r.overshoot.seconds)}`,
    `50 % budget ${mb(r.overAtStart.budgetBytes)} MB of ${mb(r.overAtStart.heldBytes)} MB held: ${s(r.overAtStart.seconds)}`,
  ].join('; ');
}
