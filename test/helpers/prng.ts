/**
 * @module
 * A seeded PRNG (mulberry32) for tests that generate input or pick moments at random: a failure
 * replays exactly with the same seed.
 */

/** Returns a function yielding uniform numbers in [0, 1), determined by `seed`. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
