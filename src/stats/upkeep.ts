/**
 * @module
 * Expiration and integrity figures: evictions and problems found, added up in the `meta` table
 * so they survive restarts (sweeps are rare: one write each, off the request path).
 */
import type { GcReport } from '../jobs/gc.ts';
import type { VerifyReport } from '../jobs/verify.ts';
import type { StatsDb } from './db.ts';

/** What the summary shows of expiration and integrity. */
export interface UpkeepFigures {
  evictedFiles: number;
  evictedBytes: number;
  lastSweepAt: number | null;
  integrityProblems: number;
  lastVerifyAt: number | null;
}

const ADD = `INSERT INTO meta (key, value) VALUES (?, ?)
  ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)`;
const SET = `INSERT INTO meta (key, value) VALUES (?, ?)
  ON CONFLICT (key) DO UPDATE SET value = excluded.value`;

/** Adds a finished (not dry) sweep to the totals. */
export function recordSweep(db: StatsDb, report: GcReport, now: number): void {
  if (report.dryRun) return;
  db.write(() => {
    db.sqlite.prepare(ADD).run('evicted_files', String(report.removed.length));
    db.sqlite.prepare(ADD).run('evicted_bytes', String(report.freedBytes));
    db.sqlite.prepare(SET).run('last_sweep_at', String(now));
  });
}

/** Adds an integrity pass to the totals. */
export function recordVerify(db: StatsDb, report: VerifyReport, now: number): void {
  db.write(() => {
    db.sqlite.prepare(ADD).run('integrity_problems', String(report.problems.length));
    db.sqlite.prepare(SET).run('last_verify_at', String(now));
  });
}

/** Reads the totals. */
export function readUpkeep(db: StatsDb): UpkeepFigures {
  const rows = db.sqlite
    .prepare(
      `SELECT key, CAST(value AS INTEGER) AS value FROM meta WHERE key IN
       ('evicted_files', 'evicted_bytes', 'last_sweep_at', 'integrity_problems', 'last_verify_at')`,
    )
    .all() as { key: string; value: number }[];
  const value = (key: string) => rows.find((row) => row.key === key)?.value;
  return {
    evictedFiles: value('evicted_files') ?? 0,
    evictedBytes: value('evicted_bytes') ?? 0,
    lastSweepAt: value('last_sweep_at') ?? null,
    integrityProblems: value('integrity_problems') ?? 0,
    lastVerifyAt: value('last_verify_at') ?? null,
  };
}
