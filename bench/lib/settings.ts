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
  /** Measurements to run (`BENCH_ONLY=crates,index`), all when unset. */
  only: Set<string> | undefined;
}

/** Measurement names, in run order. */
export const MEASUREMENTS = ['crates', 'index', 'cargo', 'stampede', 'memory', 'mirror'] as const;

const MB = 1024 * 1024;

function numberFromEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
}

/** Reads the settings from `BENCH_*` variables. */
export function loadSettings(): BenchSettings {
  const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
  const only = process.env.BENCH_ONLY?.split(',').map((name) => name.trim());
  for (const name of only ?? []) {
    if (!(MEASUREMENTS as readonly string[]).includes(name)) {
      throw new Error(`BENCH_ONLY: unknown measurement ${name} (${MEASUREMENTS.join(', ')})`);
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
    only: only && new Set(only),
  };
}
