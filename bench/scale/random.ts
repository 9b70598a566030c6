/**
 * @module
 * A seeded PRNG and the few distributions the synthetic registry draws from, so the same size
 * always gives byte-identical files (and the same checksums) on every machine.
 */

import { prng } from '../../test/helpers/prng.ts';

/** A generator of floats in [0, 1). */
export type Random = () => number;

/** mulberry32, the tests' own seeded generator. */
export const seededRandom: (seed: number) => Random = prng;

/** An integer in [min, max]. */
export function intBetween(next: Random, min: number, max: number): number {
  return min + Math.floor(next() * (max - min + 1));
}

/** True with probability `p`. */
export function chance(next: Random, p: number): boolean {
  return next() < p;
}

/** One element of a non-empty list. */
export function pick<T>(next: Random, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)] as T;
}

/**
 * A Pareto-shaped count in [1, max]: with `alpha` near 1 most draws are 1 to 5 and a few reach
 * the hundreds, like versions per crate on crates.io.
 */
export function paretoCount(next: Random, alpha: number, max: number): number {
  const u = 1 - next();
  return Math.min(max, Math.floor(u ** (-1 / alpha)));
}
