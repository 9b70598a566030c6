/**
 * @module
 * Counting and judging a soak run: per-kind request tallies with latency percentiles, the
 * proxy's memory and file descriptors over time, and its event-loop delay, rendered as Markdown
 * with the list of criteria that failed.
 */

import { cpus, loadavg } from 'node:os';

/** What a client asked for. */
export type Kind = 'hit' | 'miss' | 'index' | 'git';

/** The proxy seen from outside, once a second. */
export interface Sample {
  at: number;
  rss: number;
  fds: number;
}

/** The proxy seen from inside (scripts/soak-probe.mjs), once a second. */
export interface ProbeSample {
  at: number;
  rss: number;
  heapUsed: number;
  loopDelayMaxMs: number;
  loopDelayP99Ms: number;
  /** CPU time the proxy used in that second, ms. */
  cpuMs?: number;
  /** Time its main thread waited for a CPU in that second (other processes' load), ms. */
  runQueueMs?: number;
}

interface KindTally {
  ok: number;
  failed: number;
  notModified: number;
  latencies: number[];
  errors: string[];
}

/** Counts requests by kind. */
export class Tally {
  #kinds = new Map<Kind, KindTally>();

  record(kind: Kind, ms: number, ok: boolean, error?: string, notModified = false): void {
    const tally = this.#kinds.get(kind) ?? {
      ok: 0,
      failed: 0,
      notModified: 0,
      latencies: [],
      errors: [],
    };
    this.#kinds.set(kind, tally);
    if (ok) tally.ok += 1;
    else tally.failed += 1;
    if (notModified) tally.notModified += 1;
    // A bounded reservoir is enough for percentiles and keeps this process's memory flat.
    if (tally.latencies.length < 200_000) tally.latencies.push(ms);
    if (error !== undefined && tally.errors.length < 5) tally.errors.push(error);
  }

  reset(): void {
    this.#kinds.clear();
  }

  get(kind: Kind): KindTally | undefined {
    return this.#kinds.get(kind);
  }

  kinds(): [Kind, KindTally][] {
    return [...this.#kinds];
  }
}

/** The inputs of {@link renderReport}. */
export interface RunFigures {
  seconds: number;
  clients: number;
  tally: Tally;
  samples: Sample[];
  probes: ProbeSample[];
}

const MB = 1024 * 1024;

/** Renders the figures and judges them. */
export function renderReport(run: RunFigures): { markdown: string; failures: string[] } {
  const failures: string[] = [];
  const rows = run.tally.kinds().map(([kind, tally]) => {
    const sorted = [...tally.latencies].sort((a, b) => a - b);
    const total = tally.ok + tally.failed;
    return `| ${kind} | ${total} | ${(total / run.seconds).toFixed(0)} | ${tally.failed} | ${kind === 'index' ? tally.notModified : '—'} | ${ms(pct(sorted, 50))} | ${ms(pct(sorted, 99))} | ${ms(sorted.at(-1) ?? 0)} |`;
  });
  const hits = run.tally.get('hit');
  if (!hits || hits.ok === 0) failures.push('no cached download succeeded');
  if (hits && hits.failed > 0)
    failures.push(`${hits.failed} cached downloads failed: ${hits.errors.join('; ')}`);
  for (const [kind, tally] of run.tally.kinds()) {
    if (kind !== 'hit' && tally.failed > 0)
      failures.push(`${tally.failed} ${kind} requests failed: ${tally.errors.join('; ')}`);
  }

  // Memory and descriptors: the second quarter (after warm-up) against the last quarter.
  const q = (list: number[], from: number, to: number) =>
    median(list.slice(Math.floor(list.length * from), Math.ceil(list.length * to)));
  const rss = run.samples.map((s) => s.rss);
  const heap = run.probes.map((p) => p.heapUsed);
  const fds = run.samples.map((s) => s.fds);
  const rssEarly = q(rss, 0.25, 0.5);
  const rssLate = q(rss, 0.75, 1);
  const heapEarly = q(heap, 0.25, 0.5);
  const heapLate = q(heap, 0.75, 1);
  const fdsEarly = q(fds, 0.25, 0.5);
  const fdsLate = q(fds, 0.75, 1);
  if (rssLate > rssEarly * 1.25 + 16 * MB)
    failures.push(`RSS grew from ${mb(rssEarly)} to ${mb(rssLate)}`);
  if (heapLate > heapEarly * 1.5 + 16 * MB)
    failures.push(`heap grew from ${mb(heapEarly)} to ${mb(heapLate)}`);
  if (fdsLate > fdsEarly + 50)
    failures.push(`open descriptors grew from ${fdsEarly} to ${fdsLate}`);
  // A delay the proxy caused itself: the loop's worst delay in a second, less the time the
  // machine made its thread wait for a CPU in that second (other processes, this generator).
  const own = (p: ProbeSample) => Math.max(0, p.loopDelayMaxMs - (p.runQueueMs ?? 0));
  const stall = Math.max(0, ...run.probes.map(own));
  const rawStall = Math.max(0, ...run.probes.map((p) => p.loopDelayMaxMs));
  const stalls = run.probes.filter((p) => own(p) > 100).length;
  const rawStalls = run.probes.filter((p) => p.loopDelayMaxMs > 100).length;
  const waited = run.probes.reduce((sum, p) => sum + (p.runQueueMs ?? 0), 0);
  const cpu = run.probes.reduce((sum, p) => sum + (p.cpuMs ?? 0), 0);
  if (stall > 100)
    failures.push(`event loop stalled ${stalls} time(s), worst ${stall.toFixed(0)} ms`);
  if (run.probes.length === 0) failures.push('the probe reported nothing');

  const markdown = [
    `Soak: ${run.clients} concurrent clients for ${run.seconds} s on loopback (${new Date().toISOString().slice(0, 10)}, ${process.platform}, Node ${process.version}).`,
    '',
    '| requests | count | per s | failed | 304 | p50 | p99 | max |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '| proxy process | after warm-up (2nd quarter, median) | end (last quarter, median) | min | max |',
    '|---|---|---|---|---|',
    `| RSS | ${mb(rssEarly)} | ${mb(rssLate)} | ${mb(Math.min(...rss))} | ${mb(Math.max(...rss))} |`,
    `| heap used | ${mb(heapEarly)} | ${mb(heapLate)} | ${mb(Math.min(...heap))} | ${mb(Math.max(...heap))} |`,
    `| open file descriptors | ${fdsEarly} | ${fdsLate} | ${Math.min(...fds)} | ${Math.max(...fds)} |`,
    '',
    `Event loop delay of the proxy's own making (loop delay less run-queue wait): worst ${stall.toFixed(1)} ms; seconds over 100 ms: ${stalls} of ${run.probes.length}.`,
    `Raw event loop delay: worst ${rawStall.toFixed(1)} ms, worst per-second p99 ${Math.max(0, ...run.probes.map((p) => p.loopDelayP99Ms)).toFixed(1)} ms, seconds over 100 ms: ${rawStalls}. The proxy used ${(cpu / 1000 / Math.max(1, run.probes.length)).toFixed(2)} cores on average and waited ${(waited / 1000).toFixed(1)} s in total for a CPU; machine load average at the end: ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`,
    '',
    failures.length === 0 ? 'Verdict: pass.' : `Verdict: FAIL (${failures.length}).`,
  ].join('\n');
  return { markdown, failures };
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(0)} MB`;
}
