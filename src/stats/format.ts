/**
 * @module
 * Number formatting for the terminal summary (the dashboard script has the same rules).
 */

const BYTE_UNITS = ['kB', 'MB', 'GB', 'TB', 'PB'];

/** Bytes in SI units with three significant digits: `999 B`, `1.23 MB`, `45.6 GB`. */
export function formatBytes(bytes: number): string {
  let n = Math.max(0, bytes);
  if (n < 1000) return `${Math.round(n)} B`;
  let unit = -1;
  do {
    n /= 1000;
    unit += 1;
  } while (n >= 1000 && unit < BYTE_UNITS.length - 1);
  const digits = n >= 100 ? 0 : n >= 10 ? 1 : 2;
  return `${n.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** A whole number with thousands separators: `12,345`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A ratio as a percentage with one decimal, or `–` when there is none. */
export function formatPercent(ratio: number | null): string {
  return ratio === null ? '–' : `${(ratio * 100).toFixed(1)}%`;
}

/** How long ago `at` was, relative to `now`: `just now`, `12 s ago`, `5 min ago`, `3 h ago`. */
export function formatAgo(at: number | null, now: number): string {
  if (at === null) return 'never';
  const s = Math.max(0, (now - at) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** Milliseconds, for latencies: `0.8 ms`, `45 ms`. */
export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** A one-line bar chart of `values` in block characters (blank for zero). */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values
    .map((v) => {
      if (v <= 0 || max === 0) return ' ';
      return SPARKS[Math.min(SPARKS.length - 1, Math.floor((v / max) * (SPARKS.length - 1)))];
    })
    .join('');
}
