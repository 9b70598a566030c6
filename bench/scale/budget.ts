/**
 * @module
 * How fast the cache gets back under `--max-size`, in two shapes:
 *
 * - **over at start**: the mirrored store, restarted with a budget of half its crate bytes;
 *   the time from spawn until it is under.
 * - **overshoot**: `cargo-cacher gc --max-size <95 %>` first removes about 5 % of the crates
 *   (the real sweep, also timed), the proxy restarts with a budget of what is left plus half the
 *   bytes of up to 200 of the removed crates, and those are downloaded through it again; the time
 *   from the last download until it is under. (A budget 2 % above the held size would not be
 *   crossed by 200 small crates at 200,000 versions, so the budget is set to be crossed by half
 *   of what is downloaded, at every size.)
 *
 * "Under" means the `cargo_cacher_cache_size_bytes{area="crates"}` gauge reads at most the
 * budget (polled every 100 ms) and a walk of the crate files on disk confirms it, so a gauge
 * that was measured before the downloads cannot end the wait early.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseCrateKey } from '../../src/registry/crate-id.ts';
import type { SizeContext } from './phases.ts';
import {
  crateBytesGauge,
  crateBytesOnDisk,
  measureCommand,
  msUntil200,
  timedGet,
} from './probes.ts';
import { CACHER_BIN, spawnCacher } from './proxy.ts';
import type { VersionRow } from './registry.ts';

/** Crates downloaded again in the overshoot variant, at most. */
const REDOWNLOADS = 200;

/** One wait for the budget. */
export interface BudgetResult {
  /** Seconds until under budget; Infinity when not within the wait. */
  seconds: number;
  budgetBytes: number;
  heldBytes: number;
}

/** The overshoot result, with the 5 % gc sweep that prepared it. */
export interface OvershootResult extends BudgetResult {
  downloaded: number;
  downloadFailures: number;
  gcSeconds: number;
  gcPeakRssBytes: number;
  gcRemoved: number;
}

/** Restart with half the held crate bytes as the budget; seconds from spawn until under. */
export async function overAtStartPhase(ctx: SizeContext): Promise<BudgetResult> {
  const heldBytes = await crateBytesOnDisk(ctx.storageDir);
  const budgetBytes = Math.floor(heldBytes / 2);
  const proxy = await spawnCacher(ctx.storageDir, ctx.sparse, budgetArgs(budgetBytes));
  const spawned = performance.now();
  try {
    const seconds = await secondsUntilUnder(ctx, proxy.url, budgetBytes, spawned);
    return { seconds, budgetBytes, heldBytes };
  } finally {
    await proxy.stop();
  }
}

/** Remove 5 %, restart with a budget the re-downloads cross, download, wait until under. */
export async function overshootPhase(
  ctx: SizeContext,
  versions: VersionRow[],
): Promise<OvershootResult> {
  const before = await crateBytesOnDisk(ctx.storageDir);
  const gcArgs = ['gc', '-i', ctx.storageDir, '--max-size', String(Math.floor(before * 0.95))];
  const gc = await measureCommand(CACHER_BIN, gcArgs, 900_000);
  const removed = removedVersions(gc.stdout, versions);
  const chosen = removed.slice(0, REDOWNLOADS);
  const heldBytes = await crateBytesOnDisk(ctx.storageDir);
  const budgetBytes = heldBytes + Math.floor(sum(chosen.map((v) => v.bytes)) / 2);
  const proxy = await spawnCacher(ctx.storageDir, ctx.sparse, budgetArgs(budgetBytes));
  try {
    await msUntil200(`${proxy.url}/health`, performance.now(), 900_000);
    // The first scrape measures the store as it is before the downloads.
    await timedGet(`${proxy.url}/metrics`);
    const downloadFailures = await download(proxy.url, chosen);
    const seconds = await secondsUntilUnder(ctx, proxy.url, budgetBytes, performance.now());
    return {
      seconds,
      budgetBytes,
      heldBytes,
      downloaded: chosen.length - downloadFailures,
      downloadFailures,
      gcSeconds: gc.seconds,
      gcPeakRssBytes: gc.peakRssBytes,
      // Counted from gc's last line: only the tail of its per-file lines is kept.
      gcRemoved: Number(/^removed (\d+) files/m.exec(gc.stdout)?.[1] ?? removed.length),
    };
  } finally {
    await proxy.stop();
  }
}

function budgetArgs(budgetBytes: number): string[] {
  return ['--no-git', '--max-size', String(budgetBytes)];
}

/**
 * The versions named by `removed crates/… (…)` lines of `gc` (the tail of its output: the
 * benchmark keeps the last 64 KB, several hundred lines), in the order gc removed them.
 */
function removedVersions(stdout: string, versions: VersionRow[]): VersionRow[] {
  const byLabel = new Map(versions.map((v) => [`${v.name.toLowerCase()}@${v.version}`, v]));
  const found: VersionRow[] = [];
  for (const match of stdout.matchAll(/^removed (crates\/\S+\.crate) \(/gm)) {
    const id = parseCrateKey(match[1] as string);
    const row = id && byLabel.get(`${id.name}@${id.version}`);
    if (row) found.push(row);
  }
  return found;
}

/** Downloads through the proxy, 8 at a time; returns how many did not answer 200. */
async function download(url: string, chosen: VersionRow[]): Promise<number> {
  let next = 0;
  let failures = 0;
  const worker = async () => {
    for (let i = next++; i < chosen.length; i = next++) {
      const v = chosen[i] as VersionRow;
      const path = `/api/v1/crates/${v.name}/${encodeURIComponent(v.version)}/download`;
      const res = await timedGet(`${url}${path}`).catch(() => undefined);
      if (res?.status !== 200) failures += 1;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return failures;
}

/** Seconds from `since` until under `budget` (gauge, then disk), or Infinity after the wait. */
async function secondsUntilUnder(
  ctx: SizeContext,
  url: string,
  budget: number,
  since: number,
): Promise<number> {
  const deadline = since + ctx.budgetWaitS * 1000;
  let nextDiskCheck = 0;
  while (performance.now() < deadline) {
    const gauge = await timedGet(`${url}/metrics`).then(
      (res) => crateBytesGauge(res.body),
      () => undefined,
    );
    if (gauge !== undefined && gauge <= budget && performance.now() >= nextDiskCheck) {
      // The gauge's reading counts; the walk only confirms it (and takes a while at 200,000).
      const seenAt = performance.now();
      if ((await crateBytesOnDisk(ctx.storageDir)) <= budget) return (seenAt - since) / 1000;
      // Spend no more than a third of the time on walks.
      nextDiskCheck = performance.now() + 2 * (performance.now() - seenAt);
    }
    await delay(100);
  }
  return Number.POSITIVE_INFINITY;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
