/**
 * @module
 * The `pubtime` field of index lines: when a version was published. Pure, no I/O.
 */

/**
 * RFC 3339 `date-time` (§5.6). crates.io writes `2025-04-24T12:34:56Z` (exactly 20 characters),
 * but the grammar also allows fractional seconds, a numeric offset, and lowercase `t` and `z`.
 */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Longer than any RFC 3339 timestamp worth reading; stops a regex from scanning junk. */
const MAX_LENGTH = 64;

/**
 * Milliseconds since the epoch of an RFC 3339 timestamp, or `undefined` when the value is absent,
 * not a string, or not a valid date and time (a month 13, February 30, an hour 24). Cargo treats
 * a line without a usable `pubtime` as having none. Fractions below a millisecond are dropped; a
 * leap second (`:60`) counts as the first second of the next minute.
 */
export function parsePubtime(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > MAX_LENGTH) return undefined;
  const match = DATE_TIME.exec(value);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!validDate(year, month, day) || hour > 23 || minute > 59 || second > 60) return undefined;
  const offset = offsetMinutes(match[8], match[9], match[10]);
  if (offset === undefined) return undefined;
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not read years 0–99 as 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, fractionToMs(match[7]));
  return date.getTime() - offset * 60_000;
}

function validDate(year: number, month: number, day: number): boolean {
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** The offset east of UTC in minutes; `Z` is 0; `undefined` for an impossible offset. */
function offsetMinutes(
  sign: string | undefined,
  hours: string | undefined,
  minutes: string | undefined,
): number | undefined {
  if (sign === undefined) return 0;
  const h = Number(hours);
  const m = Number(minutes);
  if (h > 23 || m > 59) return undefined;
  return (sign === '-' ? -1 : 1) * (h * 60 + m);
}

/** `.5` is 500 ms, `.123456` is 123 ms (truncated, never rounded into the next second). */
function fractionToMs(fraction: string | undefined): number {
  if (fraction === undefined) return 0;
  return Number(fraction.slice(0, 3).padEnd(3, '0'));
}
