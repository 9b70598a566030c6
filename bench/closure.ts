/**
 * @module
 * `npx tsx bench/closure.ts [sizes]`: the cost of computing a filtered mirror's selection
 * (`selectFromFilters`: the filter read, the dependency closure walked, index files read 16 at a
 * time) on the scale benchmark's synthetic registries (10,000 and 200,000 versions by default;
 * generate them first with `npm run bench -- scale`, or pass other cached sizes). Index files are
 * read from the registry's static sparse index on disk, so the figures are the closure's own cost
 * plus file reads, without any network. Filters of 50 and 500 roots (bare names, spread evenly
 * over the registry's crates) are measured, each 3 times after one warm-up; the median is shown.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectFromFilters } from '../src/jobs/mirror-selection.ts';
import { indexPath } from '../src/registry/crate-name.ts';
import { GENERATOR_VERSION, registryCacheRoot } from './scale/registry.ts';

const ROOT_COUNTS = [50, 500];
const RUNS = 3;

interface Run {
  ms: number;
  versions: number;
  indexFiles: number;
  problems: number;
  heapMb: number;
}

/** Crate names in generation order (the registry's `versions.tsv`, one line per version). */
async function crateNames(dir: string): Promise<string[]> {
  const text = await readFile(join(dir, 'versions.tsv'), 'utf8');
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.slice(0, line.indexOf('\t'));
    if (name !== '') names.add(name);
  }
  return [...names];
}

/** `count` names spread evenly; later crates depend on earlier ones, so the spread reaches both. */
function spread(names: readonly string[], count: number): string[] {
  const step = names.length / count;
  return Array.from({ length: count }, (_, i) => names[Math.floor(i * step)] as string);
}

async function measure(wwwDir: string, filter: string): Promise<Run> {
  let indexFiles = 0;
  const readIndex = async (name: string): Promise<Buffer | undefined> => {
    indexFiles += 1;
    try {
      return await readFile(join(wwwDir, 'index', indexPath(name)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  const started = performance.now();
  const selection = await selectFromFilters([filter], { keep: 1, readIndex, concurrency: 16 });
  const ms = performance.now() - started;
  return {
    ms,
    versions: selection.versions.length,
    indexFiles,
    problems: selection.problems.length,
    heapMb: process.memoryUsage().heapUsed / 1e6,
  };
}

function median(runs: Run[]): Run {
  return [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)] as Run;
}

async function main(): Promise<void> {
  const sizes = process.argv.length > 2 ? process.argv.slice(2) : ['10000', '200000'];
  const work = await mkdtemp(join(tmpdir(), 'closure-bench-'));
  const rows: string[] = [];
  try {
    for (const size of sizes) {
      const dir = join(registryCacheRoot(), `${size}-v${GENERATOR_VERSION}`);
      if (!(await stat(join(dir, 'manifest.json')).catch(() => undefined))) {
        console.error(
          `no cached registry of ${size} versions in ${dir}: run npm run bench -- scale`,
        );
        process.exitCode = 1;
        continue;
      }
      const names = await crateNames(dir);
      for (const count of ROOT_COUNTS) {
        const filter = join(work, `roots-${size}-${count}.txt`);
        await writeFile(filter, `${spread(names, count).join('\n')}\n`);
        await measure(join(dir, 'www'), filter);
        const runs: Run[] = [];
        for (let i = 0; i < RUNS; i++) runs.push(await measure(join(dir, 'www'), filter));
        const m = median(runs);
        const row = `| ${Number(size).toLocaleString('en')} (${names.length.toLocaleString('en')} crates) | ${count} | ${m.ms.toFixed(0)} ms | ${m.versions.toLocaleString('en')} | ${m.indexFiles.toLocaleString('en')} | ${m.problems} | ${m.heapMb.toFixed(0)} MB |`;
        console.log(row);
        rows.push(row);
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  console.log(
    [
      '',
      '| registry (versions) | roots | time (median of 3) | versions selected | index files read | problems | heap after |',
      '|---|---|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  );
}

await main();
