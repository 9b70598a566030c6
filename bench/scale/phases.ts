/**
 * @module
 * The phases of one size of the scale measurement, each against the same storage dir: the full
 * mirror, the restart (first answers, first and later /metrics scrapes, idle CPU), and the
 * `gc --dry-run` sweep. The `--max-size` phases are in budget.ts.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { startCacher } from '../lib/servers.ts';
import { memoryOf } from '../lib/system.ts';
import {
  cpuSeconds,
  crateBytesGauge,
  measureCommand,
  msUntil200,
  percentile,
  timedGet,
} from './probes.ts';
import { CACHER_BIN, spawnCacher } from './proxy.ts';
import type { Registry } from './registry.ts';

/** What every phase of one size needs. */
export interface SizeContext {
  registry: Registry;
  /** The nginx sparse index URL, `http://127.0.0.1:PORT/index/`. */
  sparse: string;
  storageDir: string;
  idleSeconds: number;
  budgetWaitS: number;
  log: (line: string) => void;
}

/** Concurrent downloads of the mirror (`-t`). */
export const MIRROR_THREADS = 16;

/** What the mirror did. */
export interface MirrorResult {
  perSecond: number;
  fetched: number;
  failed: number;
  jobSeconds: number;
  peakRssBytes: number;
  /** Up to five versions not fetched, with why (failed, skipped or already cached). */
  notFetched: string[];
}

interface MirrorJob {
  id: string;
  kind: string;
  state: string;
  startedAt: string;
  finishedAt?: string;
  counts: { total: number; fetched: number; failed: number };
  report?: { name: string; version: string; status: string; reason?: string }[];
}

/** `-a -g <bare> -t 16` on an empty store until the mirror job ends. */
export async function mirrorPhase(ctx: SizeContext): Promise<MirrorResult> {
  const proxy = await startCacher({
    storageDir: ctx.storageDir,
    sparse: ctx.sparse,
    args: ['-a', '-g', ctx.registry.bareGit, '-t', String(MIRROR_THREADS)],
  });
  try {
    // At least 10 minutes, and at least 50 versions a second.
    const deadline = Date.now() + Math.max(600_000, ctx.registry.manifest.versions * 20);
    for (;;) {
      const { body } = await timedGet(`${proxy.url}/api/v1/jobs`);
      const { jobs } = JSON.parse(body) as { jobs: MirrorJob[] };
      const job = jobs.find((j) => j.kind === 'mirror' && j.state !== 'running');
      if (job?.finishedAt !== undefined) {
        const jobSeconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
        const { hwm } = await memoryOf(proxy.child.pid);
        if (job.state !== 'done')
          ctx.log(`mirror job ended ${job.state}: ${JSON.stringify(job.counts)}`);
        return {
          perSecond: job.counts.fetched / jobSeconds,
          fetched: job.counts.fetched,
          failed: job.counts.failed,
          jobSeconds,
          peakRssBytes: hwm,
          notFetched:
            job.counts.fetched === job.counts.total ? [] : await notFetched(proxy.url, job.id),
        };
      }
      if (Date.now() > deadline) throw new Error('the mirror did not finish in time');
      await delay(250);
    }
  } finally {
    await proxy.stop();
  }
}

/** The first versions of a job's report that were not fetched, as `name@version: status (why)`. */
async function notFetched(url: string, id: string): Promise<string[]> {
  const { body } = await timedGet(`${url}/api/v1/jobs/${id}`);
  const job = JSON.parse(body) as MirrorJob;
  return (job.report ?? [])
    .filter((entry) => entry.status !== 'fetched')
    .slice(0, 5)
    .map((e) => `${e.name}@${e.version}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`);
}

/** What a restart on the mirrored store costs. */
export interface RestartResult {
  healthMs: number;
  indexMs: number;
  firstMetricsMs: number;
  metricsP50Ms: number;
  metricsP99Ms: number;
  /** Crate bytes the first /metrics reported. */
  crateBytes: number | undefined;
  idleCpuPercent: number;
}

/** Restarts with `--no-git` and times the first answers, the scrapes and idle CPU. */
export async function restartPhase(ctx: SizeContext): Promise<RestartResult> {
  const proxy = await spawnCacher(ctx.storageDir, ctx.sparse, ['--no-git']);
  const spawned = performance.now();
  try {
    const healthMs = await msUntil200(`${proxy.url}/health`, spawned, 900_000);
    const indexMs = await msUntil200(
      `${proxy.url}/index/${ctx.registry.samplePath}`,
      spawned,
      900_000,
    );
    const first = await timedGet(`${proxy.url}/metrics`);
    const scrapes: number[] = [];
    for (let i = 0; i < 50; i++) scrapes.push((await timedGet(`${proxy.url}/metrics`)).ms);
    const idleCpuPercent = await idleCpu(proxy.url, proxy.child.pid, ctx.idleSeconds);
    return {
      healthMs,
      indexMs,
      firstMetricsMs: first.ms,
      metricsP50Ms: percentile(scrapes, 50),
      metricsP99Ms: percentile(scrapes, 99),
      crateBytes: crateBytesGauge(first.body),
      idleCpuPercent,
    };
  } finally {
    await proxy.stop();
  }
}

/** CPU % of one core over `seconds`, with one /metrics scrape every 10 s as Prometheus would. */
async function idleCpu(url: string, pid: number, seconds: number): Promise<number> {
  const start = performance.now();
  const before = await cpuSeconds(pid);
  for (let at = 0; at < seconds; at += 10) {
    const wait = start + at * 1000 - performance.now();
    if (wait > 0) await delay(wait);
    await timedGet(`${url}/metrics`);
  }
  const rest = start + seconds * 1000 - performance.now();
  if (rest > 0) await delay(rest);
  const used = (await cpuSeconds(pid)) - before;
  return (100 * used) / ((performance.now() - start) / 1000);
}

/** `cargo-cacher gc --dry-run --max-size <budget>`: wall time and peak RSS. */
export async function gcDryRunPhase(ctx: SizeContext, budgetBytes: number) {
  const args = ['gc', '-i', ctx.storageDir, '--dry-run', '--max-size', String(budgetBytes)];
  const cost = await measureCommand(CACHER_BIN, args, 900_000);
  const summary = cost.stdout.trim().split('\n').at(-1) ?? '';
  return { seconds: cost.seconds, peakRssBytes: cost.peakRssBytes, summary };
}
