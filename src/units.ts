/**
 * @module
 * Parsing durations and sizes given on the command line. Pure functions, no I/O.
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Long unit words, as the seed's humantime accepted them (`2 hours`, `10 minutes`). */
const DURATION_WORDS: Record<string, string> = {
  msec: 'ms',
  millisecond: 'ms',
  milliseconds: 'ms',
  sec: 's',
  secs: 's',
  second: 's',
  seconds: 's',
  min: 'm',
  mins: 'm',
  minute: 'm',
  minutes: 'm',
  hr: 'h',
  hrs: 'h',
  hour: 'h',
  hours: 'h',
  day: 'd',
  days: 'd',
  week: 'w',
  weeks: 'w',
};

/**
 * Parses a duration into milliseconds: a bare number is seconds (the seed's `-r 600`), or a sum
 * of `<number><unit>` parts such as `10m`, `1h30m`, `2 hours`, `90d`. Throws a `RangeError`
 * with a one-line reason otherwise.
 *
 * @example parseDuration('10m') // 600000
 */
export function parseDuration(text: string): number {
  const input = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(input)) return Math.round(Number(input) * 1000);
  const part = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(input); match; match = part.exec(input)) {
    const word = match[2] ?? '';
    const unit = DURATION_UNITS[DURATION_WORDS[word] ?? word];
    if (unit === undefined) throw new RangeError(`unknown duration unit "${word}" in "${text}"`);
    total += Number(match[1]) * unit;
    consumed = part.lastIndex;
  }
  if (input === '' || consumed !== input.length) {
    throw new RangeError(`invalid duration "${text}" (use 600, 30s, 10m, 1h or "2 hours")`);
  }
  return Math.round(total);
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * Parses a size into bytes: `500MB`, `20GB`, `1.5GiB`, or a bare number of bytes.
 *
 * @example parseSize('500MB') // 500000000
 */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(text.trim().toLowerCase());
  const unit = SIZE_UNITS[match?.[2] || 'b'];
  if (!match || unit === undefined) {
    throw new RangeError(`invalid size "${text}" (use 500MB, 20GB or a number of bytes)`);
  }
  return Math.round(Number(match[1]) * unit);
}

/** A duration as the flags write it, in its largest whole unit: `3d`, `36h`, `90s`, `250ms`. */
export function formatDuration(ms: number): string {
  const units = Object.entries(DURATION_UNITS).sort(([, a], [, b]) => b - a);
  const [unit, size] = units.find(([, size]) => ms >= size && ms % size === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}
