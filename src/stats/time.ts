/**
 * @module
 * Time buckets of the statistics: UTC minutes and UTC days as whole numbers since the epoch.
 */

/** Milliseconds in a minute. */
export const MINUTE_MS = 60_000;
/** Milliseconds in a day. */
export const DAY_MS = 86_400_000;

/** The minute bucket of a timestamp. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS);
}

/** The UTC day bucket of a timestamp. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}
