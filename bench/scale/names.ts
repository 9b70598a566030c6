/**
 * @module
 * Crate names shaped like crates.io's: every length from 1 to 64, so all four index path shapes
 * (`1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`) occur, words joined by `-` or `_`, a few with upper
 * case letters. Names are unique the way crates.io makes them unique: ignoring case and treating
 * `-` and `_` as the same.
 */
import { chance, intBetween, pick, type Random } from './random.ts';

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const ALNUM = `${LETTERS}0123456789`;
const WORDS = [
  'serde',
  'tokio',
  'async',
  'http',
  'json',
  'core',
  'util',
  'utils',
  'derive',
  'macro',
  'sys',
  'rs',
  'cli',
  'api',
  'client',
  'server',
  'codec',
  'parser',
  'proto',
  'rand',
  'log',
  'test',
  'web',
  'db',
  'sql',
  'fs',
  'io',
  'net',
  'time',
  'sync',
  'hash',
  'crypto',
  'wasm',
  'bindings',
  'ffi',
  'tree',
  'graph',
  'image',
  'audio',
  'game',
  'engine',
  'config',
  'env',
  'build',
  'tool',
  'kit',
  'lite',
  'fast',
  'simple',
  'mini',
  'tiny',
  'rust',
  'lib',
  'plugin',
];

/** Makes unique names one at a time. */
export class NameMaker {
  readonly #next: Random;
  readonly #taken = new Set<string>();

  constructor(next: Random) {
    this.#next = next;
  }

  /** A fresh name; the first few cover the short index path shapes whatever the size. */
  make(ordinal: number): string {
    const forced = ['a', 'xy', 'abc', 'q', 'z9', 'k-v'][ordinal];
    if (forced !== undefined && this.#claim(forced)) return forced;
    for (;;) {
      const name = this.#candidate();
      if (this.#claim(name)) return name;
    }
  }

  #claim(name: string): boolean {
    const canonical = name.toLowerCase().replaceAll('_', '-');
    if (this.#taken.has(canonical)) return false;
    this.#taken.add(canonical);
    return true;
  }

  #candidate(): string {
    const next = this.#next;
    const roll = next();
    // Short names are rare but each shape needs to show up at every size.
    if (roll < 0.004) return pick(next, [...LETTERS]);
    if (roll < 0.02) return shortName(next, 2);
    if (roll < 0.06) return shortName(next, 3);
    const name = roll < 0.995 ? wordsName(next) : longName(next);
    return chance(next, 0.005) ? name[0]?.toUpperCase() + name.slice(1) : name;
  }
}

function shortName(next: Random, length: number): string {
  let name = pick(next, [...LETTERS]);
  while (name.length < length) name += chance(next, 0.1) ? '-' : pick(next, [...ALNUM]);
  // A name must not end in a separator to look like the real thing.
  return name.endsWith('-') ? `${name.slice(0, -1)}x` : name;
}

function wordsName(next: Random): string {
  const parts = Array.from({ length: intBetween(next, 1, 4) }, () => pick(next, WORDS));
  const sep = chance(next, 0.25) ? '_' : '-';
  let name = parts.join(sep);
  // Plenty of names carry a distinguishing suffix (a number, an author's word).
  if (chance(next, 0.6)) name += `${sep}${suffix(next)}`;
  return name.slice(0, 64);
}

function suffix(next: Random): string {
  const length = intBetween(next, 2, 8);
  let text = '';
  while (text.length < length) text += pick(next, [...ALNUM]);
  return text;
}

/** Names from 40 up to the 64-character limit. */
function longName(next: Random): string {
  let name = pick(next, [...LETTERS]);
  const length = intBetween(next, 40, 64);
  while (name.length < length) name += chance(next, 0.1) ? '_' : pick(next, [...ALNUM]);
  return name;
}
