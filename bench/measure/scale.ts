/**
 * @module
 * Measurement 7 (on request: `npm run bench -- scale`): how costs grow with the size of the
 * cache. For each of `BENCH_SCALE_SIZES` (versions) a synthetic crates.io (bench/scale/registry.ts,
 * cached between runs) is served by nginx, then on one fresh storage dir: the full mirror
 * (`-a -g <bare> -t 16`), a restart with `--no-git` (first answers, /metrics, idle CPU),
 * `gc --dry-run`, and the two `--max-size` waits (bench/scale/budget.ts). The report compares the
 * largest size with the smallest: per-request and idle costs should not grow (ratio ≤ 1.5), and
 * the largest size has absolute goals.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Section } from '../lib/report.ts';
import type { BenchSettings } from '../lib/settings.ts';
import type { World } from '../lib/world.ts';
import { overAtStartPhase, overshootPhase } from '../scale/budget.ts';
import { serveRegistry } from '../scale/nginx.ts';
import {
  gcDryRunPhase,
  MIRROR_THREADS,
  mirrorPhase,
  restartPhase,
  type SizeContext,
} from '../scale/phases.ts';
import { crateBytesOnDisk } from '../scale/probes.ts';
import { describe, ensureRegistry, type Registry } from '../scale/registry.ts';
import { type SizeResult, scaleRows, sizeNote } from '../scale/rows.ts';

function log(line: string): void {
  process.stderr.write(`bench: scale: ${line}\n`);
}

/** 7. Costs against the cache's size. */
export async function measureScale(
  settings: BenchSettings,
  _world: World,
  dir: string,
): Promise<Section> {
  const results: SizeResult[] = [];
  const registries: Registry[] = [];
  const generation: string[] = [];
  for (const size of settings.scaleSizes) {
    const started = performance.now();
    const registry = await ensureRegistry(size, log);
    const took = (performance.now() - started) / 1000;
    generation.push(
      `${size}: generated in ${registry.manifest.generationSeconds.toFixed(1)} s (${registry.generatedNow ? 'in this run' : `taken from the cache in ${took.toFixed(1)} s`})`,
    );
    registries.push(registry);
    results.push(await measureSize(settings, registry, join(dir, String(size))));
  }
  const small = results[0] as SizeResult;
  const large = results.at(-1) as SizeResult;
  return {
    title: '7. Costs against the cache size',
    columns: { subject: `${large.size} versions`, baseline: `${small.size} versions` },
    rows: scaleRows(small, large),
    notes: [
      `One run per size, each on a fresh storage dir; the ratio is ${large.size} ÷ ${small.size} versions (values under a small floor count as the floor, so near-zero figures do not make it meaningless). Ratio goals apply to per-request and idle costs; absolute goals to the ${large.size}-version figures.`,
      ...registries.map((r) => `Registry ${r.manifest.size}: ${describe(r.manifest)}.`),
      `Synthetic registries (seeded, cached in ${registries[0]?.dir.replace(/\/[^/]+$/, '')}): ${generation.join('; ')}.`,
      `Served by nginx (1 worker): static sparse index and .crate files, \`dl\` = \`/crates/{lowerprefix}/{crate}/{crate}-{version}.crate\`; the git index is a bare repo made by one \`git fast-import\`.`,
      `Mirror: \`-a -g <bare> -t ${MIRROR_THREADS}\`, throughput from the mirror job's start and end; peak RSS is VmHWM of the proxy when the job ended.`,
      'Restart: `--no-git` on the mirrored store; ms from spawn to the first 200 of `/health`, then of the index file of the crate with the most versions (both polled every 10 ms); then the first `/metrics`, 50 sequential scrapes, and idle CPU (utime+stime from /proc over wall time), which starts right after the scrapes, so upkeep still running after the start counts.',
      `--max-size: "at start" restarts with half the crate bytes on disk as budget and times spawn → under; "after re-downloads" first runs \`gc --max-size\` at 95 % (timed: "gc removing 5 %"), restarts with a budget of what is left plus half the bytes of up to 200 removed crates, downloads them through the proxy and times the last download → under. Under = the crates gauge ≤ budget (polled every 100 ms), confirmed by summing the files on disk. The wait gives up after ${settings.scaleBudgetWaitS} s (shown as ∞).`,
      ...results.map(sizeNote),
    ],
  };
}

async function measureSize(
  settings: BenchSettings,
  registry: Registry,
  dir: string,
): Promise<SizeResult> {
  await mkdir(dir, { recursive: true });
  const nginx = await serveRegistry(join(dir, 'nginx'), registry.wwwDir);
  const ctx: SizeContext = {
    registry,
    sparse: `${nginx.url}/index/`,
    storageDir: join(dir, 'store'),
    idleSeconds: settings.scaleIdleS,
    budgetWaitS: settings.scaleBudgetWaitS,
    log,
  };
  const size = registry.manifest.size;
  try {
    log(`${size}: full mirror`);
    const mirror = await mirrorPhase(ctx);
    log(
      `${size}: ${mirror.fetched} fetched, ${mirror.perSecond.toFixed(0)} versions/s; restarting`,
    );
    const restart = await restartPhase(ctx);
    log(
      `${size}: restart ${restart.healthMs.toFixed(0)} ms, first /metrics ${restart.firstMetricsMs.toFixed(0)} ms, idle ${restart.idleCpuPercent.toFixed(2)} %`,
    );
    const held = restart.crateBytes ?? (await crateBytesOnDisk(ctx.storageDir));
    const gcDryRun = await gcDryRunPhase(ctx, Math.floor(held / 2));
    log(`${size}: gc --dry-run ${gcDryRun.seconds.toFixed(1)} s; --max-size after re-downloads`);
    const overshoot = await overshootPhase(ctx, await registry.versions());
    log(`${size}: under budget after ${overshoot.seconds.toFixed(1)} s; --max-size 50 % at start`);
    const overAtStart = await overAtStartPhase(ctx);
    log(`${size}: under budget after ${overAtStart.seconds.toFixed(1)} s`);
    return { size, mirror, restart, gcDryRun, overshoot, overAtStart };
  } finally {
    await nginx.stop();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}
