/**
 * @module
 * Writes a plausible past into a storage root's statistics, through the real recorder with a
 * moved clock: three hours of per-minute traffic and a month of daily traffic. The dashboard
 * test uses it so its chart (and the README screenshot) show a shape, not one bar.
 */
import type { FinishedRequest } from '../../src/observe/records.ts';
import { openStatsDb, statsPath } from '../../src/stats/db.ts';
import { StatsRecorder } from '../../src/stats/recorder.ts';
import { DAY_MS, MINUTE_MS } from '../../src/stats/time.ts';

/** Crates the history downloads, most popular first. */
const NAMES = ['serde', 'syn', 'tokio', 'quote', 'proc-macro2', 'libc', 'rand', 'regex', 'log'];

/** Records past requests into `<storageDir>/stats.sqlite`; returns how many. */
export function seedStatsHistory(storageDir: string, now = Date.now()): number {
  const db = openStatsDb(statsPath(storageDir));
  const clock = { now: 0 };
  const recorder = new StatsRecorder({ db, flushIntervalMs: 3_600_000, now: () => clock.now });
  let random = 42;
  const next = () => {
    random = (random * 1_103_515_245 + 12_345) % 2 ** 31;
    return random / 2 ** 31;
  };
  let count = 0;
  const burst = (at: number, size: number) => {
    clock.now = at;
    for (let i = 0; i < size; i += 1) {
      recorder.observe(
        pastRequest(NAMES[Math.floor(next() ** 2 * NAMES.length)] ?? 'serde', next()),
      );
      count += 1;
    }
  };
  for (let day = 30; day >= 1; day -= 1) {
    const weekday = new Date(now - day * DAY_MS).getUTCDay();
    burst(now - day * DAY_MS, weekday === 0 || weekday === 6 ? 40 : 160 + Math.floor(next() * 120));
  }
  for (let minute = 180; minute >= 1; minute -= 1) {
    // Working-hours bumps: builds come in waves.
    const wave = Math.max(0, Math.sin(minute / 14)) * 9 + (minute % 37 < 4 ? 14 : 0);
    burst(now - minute * MINUTE_MS, Math.floor(wave + next() * 3));
  }
  recorder.close();
  db.close();
  return count;
}

function pastRequest(name: string, roll: number): FinishedRequest {
  const index = roll < 0.45;
  const outcome = roll > 0.985 ? 'error' : roll > 0.9 ? 'miss' : 'hit';
  const size = index ? 2_400 : 60_000 + Math.floor(roll * 400_000);
  return {
    kind: index ? 'sparse-index' : 'crate',
    outcome,
    upstreamBytes: outcome === 'miss' ? size : 0,
    method: 'GET',
    url: index
      ? `/index/${name.slice(0, 2)}/${name.slice(2, 4)}/${name}`
      : `/api/v1/crates/${name}/1.0.0/download`,
    status: outcome === 'error' ? 502 : 200,
    bytesSent: outcome === 'error' ? 0 : size,
    durationMs: outcome === 'miss' ? 180 : 2,
    ...(!index && { crate: { name, version: '1.0.0' } }),
    ...(outcome === 'error' && { errorCode: 'CARGO_CACHER_UPSTREAM_UNREACHABLE' }),
  };
}
