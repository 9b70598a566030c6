/**
 * @module
 * `npm run bench`: measures cargo-cacher against what a user would run instead (nginx serving
 * files, nginx as a proxy_cache, a plain download script) on this machine, and writes a dated
 * Markdown report to bench/results/. Sets everything up itself: installs nginx and wrk when
 * missing, generates the data, picks free ports. Traffic stays on 127.0.0.1, every child
 * process is killed at the end, and a watchdog stops the whole run if it overruns.
 *
 * Measurements can be named on the command line (`npm run bench -- crates index`). `scale`
 * (costs against the cache's size, bench/measure/scale.ts) takes long and runs only when named.
 *
 * Environment: `BENCH_QUICK=1` (small and short), `BENCH_ONLY=crates,index,cargo,stampede,
 * memory,mirror,scale`, `BENCH_RUNS`, `BENCH_DURATION` (wrk seconds), `BENCH_TREE`, `BENCH_BIG_MB`,
 * `BENCH_SCALE_SIZES`, `BENCH_SCALE_BUDGET_WAIT_S`, `BENCH_SCALE_IDLE_S`, `BENCH_SCALE_CACHE`,
 * `BENCH_TIMEOUT_MIN` (default 30, 240 with `scale`).
 */
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllChildren, killChildrenOnSignals, run, stopAllChildren } from './lib/procs.ts';
import { goalMet, renderReport, type Section, writeReport } from './lib/report.ts';
import {
  type BenchSettings,
  loadSettings,
  MEASUREMENTS,
  type MeasurementName,
  ON_REQUEST,
} from './lib/settings.ts';
import { ensureTools, machineInfo } from './lib/system.ts';
import { buildWorld, type World } from './lib/world.ts';
import { measureCargo } from './measure/cargo.ts';
import { measureHotCrates, measureHotIndex } from './measure/hot.ts';
import { measureMemory } from './measure/memory.ts';
import { measureMirror } from './measure/mirror.ts';
import { measureScale } from './measure/scale.ts';
import { measureStampede } from './measure/stampede.ts';

type Measure = (settings: BenchSettings, world: World, dir: string) => Promise<Section>;

const RUNNERS: Record<MeasurementName, Measure> = {
  crates: measureHotCrates,
  index: measureHotIndex,
  cargo: measureCargo,
  stampede: measureStampede,
  memory: measureMemory,
  mirror: measureMirror,
  scale: measureScale,
};

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const REPO = fileURLToPath(new URL('../', import.meta.url));

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Stops everything when the run takes far longer than planned (a hung child, a bug). */
function startWatchdog(settings: BenchSettings): void {
  // The scale measurement mirrors 200,000 versions and waits up to 15 min for --max-size, twice.
  const fallback = settings.only?.has('scale') ? 240 : 30;
  const minutes = Number(process.env.BENCH_TIMEOUT_MIN ?? fallback);
  const timer = setTimeout(() => {
    log(`still running after ${minutes} min: stopping`);
    void stopAllChildren().finally(() => process.exit(1));
  }, minutes * 60_000);
  timer.unref();
}

function summaryLine(section: Section): string {
  return section.rows
    .map((row) => {
      const met = goalMet(row);
      const mark = met === undefined ? '' : met ? ' ok' : ' MISSED';
      return `${row.what} ${row.ratio.median.toFixed(2)}x${mark}`;
    })
    .join('; ');
}

async function main(): Promise<void> {
  killChildrenOnSignals();
  const settings = loadSettings(process.argv.slice(2));
  startWatchdog(settings);
  await ensureTools(log);
  log('building cargo-cacher (npm run build)');
  await run('npm', ['run', 'build'], { cwd: REPO, timeoutMs: 300_000 });
  const machine = await machineInfo();
  const started = new Date();
  const root = await mkdtemp(join(tmpdir(), 'cargo-cacher-bench-'));
  // nginx's worker runs as an unprivileged user and must read the files below.
  await chmod(root, 0o755);
  // An interrupted run (Ctrl-C exits from the signal handler) still removes its data.
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const sections: Section[] = [];
  try {
    log(`generating data in ${root}${settings.quick ? ' (quick mode)' : ''}`);
    const world = await buildWorld(settings);
    try {
      for (const name of [...MEASUREMENTS, ...ON_REQUEST]) {
        const onRequest = (ON_REQUEST as readonly string[]).includes(name);
        if ((settings.only || onRequest) && !settings.only?.has(name)) continue;
        log(`measuring ${name}`);
        const dir = join(root, name);
        await mkdir(dir, { recursive: true });
        const section = await RUNNERS[name](settings, world, dir);
        sections.push(section);
        log(`${name}: ${summaryLine(section)}`);
      }
    } finally {
      await world.close();
    }
    const seconds = (Date.now() - started.getTime()) / 1000;
    const text = renderReport(started, seconds, machine, settings, sections);
    const path = await writeReport(RESULTS, started, text);
    process.stdout.write(text);
    log(`report written to ${path}`);
  } finally {
    await stopAllChildren();
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  }
}

main().catch((err: unknown) => {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  killAllChildren();
  process.exitCode = 1;
});
