/**
 * @module
 * Results and the Markdown report. Every figure is shown next to its baseline from the same
 * run of the benchmark, as a ratio, because the machines are shared and absolute numbers drift.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { BenchSettings } from './settings.ts';
import { type MachineInfo, type Summary, summarize } from './system.ts';

/** One compared figure: cargo-cacher against its baseline. */
export interface Row {
  what: string;
  unit: string;
  subject: Summary;
  baseline: Summary;
  baselineName: string;
  /** Per-run ratios subject/baseline (paired runs). */
  ratio: Summary;
  /** True for throughput, false for times and memory. */
  higherIsBetter: boolean;
  /** The goal as a ratio, e.g. `≥ 0.8` (higher) or `≤ 1.2` (lower). */
  goal?: number;
  /** An absolute goal on cargo-cacher's median (`≤ 50` ms), met together with `goal`. */
  limit?: Limit;
}

/** An absolute bound, in the row's unit. */
export interface Limit {
  op: '≤' | '<' | '≥';
  value: number;
}

/** One measurement's results. */
export interface Section {
  title: string;
  rows: Row[];
  /** Extra facts (counts, setup) as bullet lines. */
  notes: string[];
  /** Headings of the two value columns, when they are not cargo-cacher and a baseline. */
  columns?: { subject: string; baseline: string };
}

/** Builds a row from paired samples (same length, run i of each belongs together). */
export function compare(
  what: string,
  unit: string,
  subject: number[],
  baseline: number[],
  options: { baselineName: string; higherIsBetter: boolean; goal?: number },
): Row {
  const ratios = subject.map((value, i) => value / (baseline[i] ?? Number.NaN));
  return {
    what,
    unit,
    subject: summarize(subject),
    baseline: summarize(baseline),
    ratio: summarize(ratios),
    ...options,
  };
}

/** True when the median ratio and median value meet the row's goals (undefined without any). */
export function goalMet(row: Row): boolean | undefined {
  const checks: boolean[] = [];
  if (row.goal !== undefined) {
    checks.push(row.higherIsBetter ? row.ratio.median >= row.goal : row.ratio.median <= row.goal);
  }
  if (row.limit !== undefined) checks.push(limitMet(row.limit, row.subject.median));
  // A figure that could not be measured (NaN) compares false: the goal counts as missed.
  return checks.length === 0 ? undefined : checks.every(Boolean);
}

function limitMet(limit: Limit, value: number): boolean {
  if (limit.op === '≤') return value <= limit.value;
  return limit.op === '<' ? value < limit.value : value >= limit.value;
}

function fmt(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return '∞';
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(abs >= 1 ? 2 : 3);
}

function range(summary: Summary): string {
  return `${fmt(summary.median)} (${fmt(summary.min)}–${fmt(summary.max)})`;
}

function goalText(row: Row): string {
  const met = goalMet(row);
  if (met === undefined) return '';
  const parts: string[] = [];
  if (row.goal !== undefined) parts.push(`${row.higherIsBetter ? '≥' : '≤'} ${row.goal}×`);
  if (row.limit !== undefined) parts.push(`${row.limit.op} ${row.limit.value} ${row.unit}`);
  return `${parts.join(', ')} ${met ? '✅' : '❌'}`;
}

function table(section: Section): string {
  const columns = section.columns ?? { subject: 'cargo-cacher', baseline: 'baseline' };
  const lines = [
    `| measurement | ${columns.subject} | ${columns.baseline} | ratio | goal |`,
    '|---|---|---|---|---|',
  ];
  for (const row of section.rows) {
    lines.push(
      `| ${row.what} (${row.unit}) | ${range(row.subject)} | ${row.baselineName}: ${range(row.baseline)} | **${fmt(row.ratio.median)}×** (${fmt(row.ratio.min)}–${fmt(row.ratio.max)}) | ${goalText(row)} |`,
    );
  }
  return lines.join('\n');
}

/** Renders the whole report. */
export function renderReport(
  started: Date,
  durationS: number,
  machine: MachineInfo,
  settings: BenchSettings,
  sections: Section[],
): string {
  const parts = [
    `# cargo-cacher benchmark, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Run with \`npm run bench\`${settings.quick ? ' in quick mode (`BENCH_QUICK=1`): small sizes, short runs' : ''}; took ${Math.round(durationS)} s.`,
    'Figures are medians with min–max over the runs; the ratio is cargo-cacher / baseline, paired run by run.',
    'For throughput higher is better, for times and memory lower is better.',
    '',
    '## Machine',
    '',
    `- CPUs: ${machine.cpus}; memory ${machine.memory}; ${machine.kernel}`,
    `- node ${machine.node}, nginx ${machine.nginx}, ${machine.wrk}, ${machine.cargo}`,
    `- load average (1 min) at the start: ${machine.loadAtStart.toFixed(1)}, at the end: ${loadavg()[0]?.toFixed(1)} (other work on a shared machine shows up here, and in the spread of the runs)`,
    `- runs per measurement: ${settings.runs}; wrk: 1 thread, ${settings.wrkSeconds} s per run; nginx: \`worker_processes 1\` (cargo-cacher is one process)`,
    '',
  ];
  for (const section of sections) {
    parts.push(`## ${section.title}`, '', table(section), '');
    for (const note of section.notes) parts.push(`- ${note}`);
    parts.push('');
  }
  return `${parts.join('\n').trimEnd()}\n`;
}

/** Writes the report to `bench/results/YYYY-MM-DD-HHMM.md` (UTC) and returns its path. */
export async function writeReport(dir: string, started: Date, text: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = started.toISOString().slice(0, 16).replace('T', '-').replace(':', '');
  const path = join(dir, `${stamp}.md`);
  await writeFile(path, text);
  return path;
}
