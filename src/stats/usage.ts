/**
 * @module
 * When each crate version was last served, as the statistics recorded it: what a reconcile
 * gives a crate it adopts from a store written before the catalogue existed, so expiration
 * keeps the order it had.
 */
import { parseCrateLabel } from '../registry/crate-id.ts';
import type { StatsDb } from './db.ts';

/** `name@version` → when it was last served (ms), or `undefined` when never. */
export type LastServedLookup = (label: string) => number | undefined;

/** A {@link LastServedLookup} over the `crate_version` table: one primary-key lookup each. */
export function createLastServedLookup(db: StatsDb): LastServedLookup {
  const query = db.sqlite.prepare(
    'SELECT last_served FROM crate_version WHERE name = ? AND version = ?',
  );
  return (label) => {
    const { name, version } = parseCrateLabel(label);
    const row = query.get(name, version) as { last_served: number } | undefined;
    return row?.last_served;
  };
}
