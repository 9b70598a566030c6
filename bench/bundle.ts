/**
 * @module
 * `npx tsx bench/bundle.ts [sizes]`: `cargo-cacher export --all` and `cargo-cacher import` on a
 * store holding every crate of the scale benchmark's synthetic registry (generate it first with
 * `npm run bench -- scale`; default sizes 10000,200000 versions). The store is filled directly
 * (index records and crates through the tracked store, so the catalogue knows them), then the
 * real commands run as child processes under `/usr/bin/time`: export to a directory, export to a
 * `.tar`, and import of the tar into an empty store. Each prints files/s, MB/s and peak RSS, so
 * how they grow with the size of the store shows.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createIndexFile, encodeIndexRecord } from '../src/cache/index-record.ts';
import { buildConfig } from '../src/config.ts';
import { openStorage } from '../src/instance.ts';
import { RECONCILED_AT } from '../src/jobs/reconcile.ts';
import { runPool } from '../src/jobs/worker-pool.ts';
import { createLogger } from '../src/logger.ts';
import { crateKey } from '../src/registry/crate-id.ts';

const execFileAsync = promisify(execFile);
/** Runs of each command (`BENCH_RUNS`); the best time is kept, other work on the machine adds noise. */
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REPO = fileURLToPath(new URL('../', import.meta.url));
const MAIN = join(REPO, 'src', 'cli', 'main.ts');

interface Measured {
  what: string;
  files: number;
  bytes: number;
  /** What the command reports for its own work (without node's start). */
  seconds: number;
  /** Wall time of the whole process. */
  wallSeconds: number;
  peakRssMb: number;
}

async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** Puts the registry's index files and crates into a new store; returns files and bytes. */
async function fillStore(
  registry: string,
  storageDir: string,
): Promise<{ files: number; bytes: number }> {
  const log = createLogger({ level: 'warn', format: 'json' });
  const storage = await openStorage(buildConfig({ storageDir }), log);
  let files = 0;
  let bytes = 0;
  try {
    const www = join(registry, 'www');
    const index = (await filesBelow(join(www, 'index'))).filter(
      (file) => !file.endsWith('config.json'),
    );
    const crates = await filesBelow(join(www, 'crates'));
    const now = Date.now();
    await runPool([...index, ...crates], 16, async (file) => {
      const body = await readFile(file);
      const path = relative(www, file);
      if (path.startsWith('index/')) {
        await storage.store.put(path, encodeIndexRecord(createIndexFile(body, {}, now)));
      } else {
        await storage.store.put(storeKeyOfCrateFile(path), body);
      }
      files++;
      bytes += body.length;
    });
    // Filled through the tracked store: nothing for the commands to reconcile first.
    storage.catalogue.setMeta(RECONCILED_AT, String(now));
  } finally {
    await storage.close();
  }
  return { files, bytes };
}

/**
 * The registry keeps crates as static.crates.io does (`crates/{prefix}/{Name}/{Name}-{v}.crate`,
 * the name's own case); the store lowercases the name (`registry/crate-id.ts`).
 */
function storeKeyOfCrateFile(path: string): string {
  const name = basename(dirname(path));
  const version = basename(path, '.crate').slice(name.length + 1);
  return crateKey({ name, version });
}

/** Runs `cargo-cacher <args>` under /usr/bin/time; its stdout and peak RSS. */
async function runCommand(
  args: string[],
): Promise<{ stdout: string; wallSeconds: number; peakRssMb: number }> {
  const started = performance.now();
  const { stdout, stderr } = await execFileAsync(
    '/usr/bin/time',
    ['-f', 'peak-rss-kb %M', process.execPath, '--import', 'tsx', MAIN, ...args],
    { cwd: REPO, maxBuffer: 64 * 1024 * 1024 },
  );
  const wallSeconds = (performance.now() - started) / 1000;
  const rss = /peak-rss-kb (\d+)/.exec(stderr);
  if (!rss) throw new Error(`no peak RSS in: ${stderr}`);
  return { stdout, wallSeconds, peakRssMb: Number(rss[1]) / 1024 };
}

/** The figures of one export or import, from its summary line. */
function measured(
  what: string,
  stdout: string,
  run: Awaited<ReturnType<typeof runCommand>>,
): Measured {
  const line =
    /(?:exported|imported) (\d+) crates and (\d+) index files[^(]*\(([\d.]+) (B|kB|MB|GB)\)[^;]* in ([\d.]+) s/.exec(
      stdout,
    );
  if (!line) throw new Error(`unexpected summary: ${stdout}`);
  const [, crates, index, size, unit, seconds] = line as unknown as string[];
  const scale = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[unit as 'B'];
  return {
    what,
    files: Number(crates) + Number(index),
    bytes: Number(size) * scale,
    seconds: Number(seconds),
    wallSeconds: run.wallSeconds,
    peakRssMb: run.peakRssMb,
  };
}

/** Runs a command {@link RUNS} times: the best time, and the highest peak RSS. */
async function bestOf(what: string, args: (run: number) => string[]): Promise<Measured> {
  let best: Measured | undefined;
  let peakRssMb = 0;
  for (let run = 0; run < RUNS; run++) {
    const result = await runCommand(args(run));
    const figures = measured(what, result.stdout, result);
    peakRssMb = Math.max(peakRssMb, figures.peakRssMb);
    if (best === undefined || figures.seconds < best.seconds) best = figures;
  }
  return { ...(best as Measured), peakRssMb };
}

function row(size: number, m: Measured): string {
  const seconds = Math.max(m.seconds, 0.05);
  return (
    `| ${size.toLocaleString('en')} | ${m.what} | ${m.files.toLocaleString('en')} | ` +
    `${(m.bytes / 1e6).toFixed(1)} MB | ${m.seconds.toFixed(1)} s (${m.wallSeconds.toFixed(1)} s wall) | ` +
    `${Math.round(m.files / seconds).toLocaleString('en')} | ${(m.bytes / 1e6 / seconds).toFixed(1)} | ` +
    `${m.peakRssMb.toFixed(0)} MB |`
  );
}

async function benchSize(size: number): Promise<string[]> {
  const registry = join(homedir(), '.cache', 'cargo-cacher', 'bench-registry', `${size}-v1`);
  const work = join(tmpdir(), `bundle-bench-${size}-${process.pid}`);
  try {
    const fillStarted = performance.now();
    const filled = await fillStore(registry, join(work, 'store'));
    process.stderr.write(
      `${size}: store filled with ${filled.files} files in ${((performance.now() - fillStarted) / 1000).toFixed(1)} s\n`,
    );
    const store = join(work, 'store');
    const runs: [string, (n: number) => string[]][] = [
      [
        'export --all to a directory',
        (n) => ['export', join(work, `bundle-${n}`), '--all', '-i', store],
      ],
      [
        'export --all to a .tar',
        (n) => ['export', join(work, `bundle-${n}.tar`), '--all', '-i', store],
      ],
      [
        'import of the .tar into an empty store',
        (n) => ['import', join(work, 'bundle-0.tar'), '-i', join(work, `far-tar-${n}`)],
      ],
      [
        'import of the directory into an empty store',
        (n) => ['import', join(work, 'bundle-0'), '-i', join(work, `far-dir-${n}`)],
      ],
    ];
    const rows: string[] = [];
    for (const [what, args] of runs) {
      rows.push(row(size, await bestOf(what, args)));
      process.stderr.write(`${rows.at(-1)}\n`);
    }
    return rows;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes = (process.argv[2] ?? '10000,200000').split(',').map(Number);
  const rows: string[] = [];
  for (const size of sizes) rows.push(...(await benchSize(size)));
  process.stdout.write(
    [
      '| versions | run | files | bytes | time (own, wall) | files/s | MB/s | peak RSS |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  );
}

await main();
