/**
 * @module
 * Sizes, durations and repetitions of the benchmark, from the environment. `BENCH_QUICK=1` makes
 * everything small enough for a smoke run of a couple of minutes.
 */

/** Every knob of the benchmark. */
export interface BenchSettings {
  quick: boolean;
  /** Repetitions of each measurement (≥ 3 for a report). */
  runs: number;
  /** Seconds of each wrk run. */
  wrkSeconds: number;
  /** wrk connections for the hot download and index measurements. */
  connections: number;
  /** Distinct cached `.crate` files for the hot download measurement (10 KB to 2 MB). */
  hotCrates: number;
  /** Crates in the generated dependency tree (cargo, index and mirror measurements). */
  treeCrates: number;
  /** Most versions a tree crate has (skewed: most have few). */
  maxVersions: number;
  /** Latency the test upstream adds to each request, ms. */
  upstreamLatencyMs: number;
  /** Round-trip time of the link between cargo and the cache for the warm runs over a link, ms. */
  linkRttMs: number;
  stampedeClients: number;
  stampedeCrateBytes: number;
  memoryConnections: number;
  bigCrateBytes: number;
  mirrorThreads: number[];
  /** Synthetic registry sizes of the scale measurement, in versions (smallest first). */
  scaleSizes: number[];
  /** How long the scale measurement waits for the cache to get back under `--max-size`, s. */
  scaleBudgetWaitS: number;
  /** Seconds over which the scale measurement takes idle CPU. */
  scaleIdleS: number;
  /** Measurements to run (`npm run bench -- crates index` or `BENCH_ONLY=crates,index`). */
  only: Set<string> | undefined;
}

/** Measurement names, in run order. */
export const MEASUREMENTS = ['crates', 'index', 'cargo', 'stampede', 'memory', 'mirror'] as const;

/** Measurements that take long, so they run only when named (`npm run bench -- scale`). */
export const ON_REQUEST = ['scale'] as const;

/** Every measurement name, in run order. */
export type MeasurementName = (typeof MEASUREMENTS)[number] | (typeof ON_REQUEST)[number];

const MB = 1024 * 1024;

function numberFromEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
}

function sizesFromEnv(name: string, fallback: number[]): number[] {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const sizes = value.split(',').map((part) => Number(part.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Error(`${name} must be comma-separated positive integers`);
  }
  return sizes.sort((a, b) => a - b);
}

/**
 * Reads the settings from `BENCH_*` variables; `names` (the command line's) choose the
 * measurements like `BENCH_ONLY` and win over it.
 */
export function loadSettings(names: string[] = []): BenchSettings {
  const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
  const only =
    names.length > 0 ? names : process.env.BENCH_ONLY?.split(',').map((name) => name.trim());
  const known: readonly string[] = [...MEASUREMENTS, ...ON_REQUEST];
  for (const name of only ?? []) {
    if (!known.includes(name)) {
      throw new Error(`unknown measurement ${name} (${known.join(', ')})`);
    }
  }
  return {
    quick,
    runs: numberFromEnv('BENCH_RUNS', 3),
    wrkSeconds: numberFromEnv('BENCH_DURATION', quick ? 3 : 10),
    connections: 64,
    hotCrates: numberFromEnv('BENCH_HOT_CRATES', quick ? 30 : 100),
    treeCrates: numberFromEnv('BENCH_TREE', quick ? 60 : 300),
    maxVersions: numberFromEnv('BENCH_MAX_VERSIONS', quick ? 8 : 30),
    upstreamLatencyMs: numberFromEnv('BENCH_LATENCY_MS', 20),
    linkRttMs: numberFromEnv('BENCH_LINK_MS', 10),
    stampedeClients: 200,
    stampedeCrateBytes: 5 * MB,
    memoryConnections: 256,
    bigCrateBytes: numberFromEnv('BENCH_BIG_MB', quick ? 50 : 200) * MB,
    mirrorThreads: [16, 64],
    scaleSizes: sizesFromEnv('BENCH_SCALE_SIZES', quick ? [2000, 20000] : [10000, 200000]),
    scaleBudgetWaitS: numberFromEnv('BENCH_SCALE_BUDGET_WAIT_S', quick ? 120 : 900),
    scaleIdleS: numberFromEnv('BENCH_SCALE_IDLE_S', quick ? 15 : 60),
    only: only && new Set(only),
  };
}
