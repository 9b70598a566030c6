/**
 * @module
 * When each crate version was last served, read from the statistics: what expiration sorts by
 * (least recently served first).
 */
import type { UsageSource } from '../jobs/gc.ts';
import type { StatsDb } from './db.ts';

/** A {@link UsageSource} over the `crate_version` table; `flush` first writes pending records. */
export function createUsageSource(db: StatsDb, flush: () => void = () => undefined): UsageSource {
  const query = db.sqlite.prepare('SELECT name, version, last_served FROM crate_version');
  return {
    lastServed() {
      flush();
      const rows = query.all() as { name: string; version: string; last_served: number }[];
      return new Map(
        rows.map((row) => [`${row.name.toLowerCase()}@${row.version}`, row.last_served]),
      );
    },
  };
}
