/**
 * @module
 * Cargo's version requirements (`^1.2`, `~1.2.3`, `>=1.2, <1.4`, `1.*`), read and evaluated the
 * way cargo's `semver` crate does (`VersionReq::parse`, `VersionReq::matches`). Pure, no I/O.
 * A requirement is a list of comparators that must all match.
 */
import { isValidVersion } from './version.ts';

/** The operator of one comparator; `*` is a wildcard (`1.*`, `1.2.*`) without an operator. */
export type Operator = '=' | '>' | '>=' | '<' | '<=' | '~' | '^' | '*';

/** One comparator. `minor` and `patch` are absent when left out or written as a wildcard. */
export interface Comparator {
  readonly op: Operator;
  readonly major: bigint;
  readonly minor?: bigint;
  readonly patch?: bigint;
  /** Pre-release identifiers; empty for none. Only present when `patch` is. */
  readonly pre: readonly string[];
}

/** A parsed requirement; no comparator at all is `*` (every version without a pre-release). */
export interface VersionRequirement {
  /** The requirement as written, trimmed. */
  readonly text: string;
  readonly comparators: readonly Comparator[];
}

/** A version split into the parts requirements compare; build metadata is dropped. */
interface ParsedVersion {
  major: bigint;
  minor: bigint;
  patch: bigint;
  pre: readonly string[];
}

const OPERATORS: readonly Operator[] = ['>=', '<=', '=', '>', '<', '~', '^'];
const WILDCARDS = new Set(['*', 'x', 'X']);
const NUMBER = /^(?:0|[1-9]\d*)$/;
const IDENTIFIER = /^[0-9A-Za-z-]+$/;
/** The semver crate refuses more; a requirement that long is a mistake, not a policy. */
const MAX_COMPARATORS = 32;

/**
 * Parses a cargo version requirement. Throws an `Error` with a short message naming what is
 * wrong. A comparator without an operator is a caret one (`1.2` is `^1.2`); `*` (or `x`, `X`)
 * must stand alone; build metadata in a comparator is accepted and ignored.
 */
export function parseRequirement(text: string): VersionRequirement {
  const trimmed = text.trim();
  if (trimmed === '') throw new Error('empty version requirement');
  if (WILDCARDS.has(trimmed)) return { text: trimmed, comparators: [] };
  const parts = trimmed.split(',');
  if (parts.length > MAX_COMPARATORS) {
    throw new Error(`more than ${MAX_COMPARATORS} comparators`);
  }
  const comparators = parts.map((part) => parseComparator(part.trim()));
  return { text: trimmed, comparators };
}

/**
 * True when `version` meets every comparator of `requirement`. A version with a pre-release
 * tag matches only when some comparator names the same major.minor.patch with a pre-release
 * (`^1.2.3-beta.1` matches `1.2.3-beta.2`, `>=1.0` never matches `2.0.0-alpha`). Build metadata
 * is ignored. A string that is not a valid semantic version matches nothing.
 */
export function satisfies(requirement: VersionRequirement, version: string): boolean {
  const parsed = parseVersion(version);
  if (parsed === undefined) return false;
  if (!requirement.comparators.every((comparator) => matches(comparator, parsed))) return false;
  return parsed.pre.length === 0 || requirement.comparators.some((c) => allowsPre(c, parsed));
}

function parseComparator(text: string): Comparator {
  if (text === '') throw new Error('empty comparator (stray comma?)');
  if (WILDCARDS.has(text))
    throw new Error(`wildcard ${JSON.stringify(text)} must be the only comparator`);
  const op = OPERATORS.find((candidate) => text.startsWith(candidate));
  const rest = (op === undefined ? text : text.slice(op.length)).trim();
  if (rest === '') throw new Error(`missing version after "${op}"`);
  if (/\s/.test(rest))
    throw new Error(`expected "," between comparators in ${JSON.stringify(text)}`);
  const core = splitCore(rest);
  const [major, minor, patch, extra] = core.numbers;
  if (extra !== undefined) throw new Error(`too many parts in ${JSON.stringify(core.text)}`);
  const wildcard = checkWildcards(core.text, [major, minor, patch]);
  if (core.suffix !== '' && (wildcard || patch === undefined)) {
    throw new Error(
      `pre-release or build metadata needs a full version in ${JSON.stringify(rest)}`,
    );
  }
  return {
    op: op ?? (wildcard ? '*' : '^'),
    major: toNumber(major, 'major', core.text),
    pre: parseSuffix(core.suffix, rest),
    ...optionalNumber('minor', minor, core.text),
    ...optionalNumber('patch', patch, core.text),
  };
}

/** `1.2.3-beta+meta` → numbers `1`, `2`, `3` and suffix `-beta+meta`. */
function splitCore(text: string): { text: string; numbers: string[]; suffix: string } {
  const end = text.search(/[-+]/);
  const core = end === -1 ? text : text.slice(0, end);
  return { text: core, numbers: core.split('.'), suffix: end === -1 ? '' : text.slice(end) };
}

/** Wildcards may only end a comparator (`1.*`, `1.*.*`, `1.2.*`); true when there is one. */
function checkWildcards(text: string, parts: (string | undefined)[]): boolean {
  if (parts[0] !== undefined && WILDCARDS.has(parts[0])) {
    throw new Error(`wildcard major version in ${JSON.stringify(text)} must stand alone`);
  }
  let seen = false;
  for (const part of parts) {
    if (part === undefined) break;
    if (WILDCARDS.has(part)) seen = true;
    else if (seen) throw new Error(`number after a wildcard in ${JSON.stringify(text)}`);
  }
  return seen;
}

function optionalNumber(
  which: 'minor' | 'patch',
  part: string | undefined,
  text: string,
): { minor?: bigint; patch?: bigint } {
  if (part === undefined || WILDCARDS.has(part)) return {};
  return { [which]: toNumber(part, which, text) };
}

function toNumber(part: string | undefined, which: string, text: string): bigint {
  if (part === undefined || !NUMBER.test(part)) {
    throw new Error(
      `invalid ${which} version ${JSON.stringify(part ?? '')} in ${JSON.stringify(text)}`,
    );
  }
  return BigInt(part);
}

/** Reads `-pre.1+build` into the pre-release identifiers; build metadata is checked, then dropped. */
function parseSuffix(suffix: string, text: string): string[] {
  if (suffix === '') return [];
  const plus = suffix.indexOf('+');
  const pre = plus === -1 ? suffix : suffix.slice(0, plus);
  const build = plus === -1 ? undefined : suffix.slice(plus + 1);
  if (build !== undefined && !validIdentifiers(build, false)) {
    throw new Error(`invalid build metadata in ${JSON.stringify(text)}`);
  }
  if (pre === '') return [];
  const identifiers = pre.slice(1);
  if (!validIdentifiers(identifiers, true))
    throw new Error(`invalid pre-release in ${JSON.stringify(text)}`);
  return identifiers.split('.');
}

function validIdentifiers(text: string, numericWithoutLeadingZero: boolean): boolean {
  return text.split('.').every((identifier) => {
    if (!IDENTIFIER.test(identifier)) return false;
    return !numericWithoutLeadingZero || !/^\d+$/.test(identifier) || NUMBER.test(identifier);
  });
}

function parseVersion(version: string): ParsedVersion | undefined {
  if (!isValidVersion(version)) return undefined;
  const plus = version.indexOf('+');
  const withoutBuild = plus === -1 ? version : version.slice(0, plus);
  const dash = withoutBuild.indexOf('-');
  const core = dash === -1 ? withoutBuild : withoutBuild.slice(0, dash);
  const [major = '0', minor = '0', patch = '0'] = core.split('.');
  const pre = dash === -1 ? [] : withoutBuild.slice(dash + 1).split('.');
  return { major: BigInt(major), minor: BigInt(minor), patch: BigInt(patch), pre };
}

function matches(c: Comparator, v: ParsedVersion): boolean {
  switch (c.op) {
    case '=':
    case '*':
      return matchesExact(c, v);
    case '>':
      return matchesGreater(c, v);
    case '>=':
      return matchesExact(c, v) || matchesGreater(c, v);
    case '<':
      return matchesLess(c, v);
    case '<=':
      return matchesExact(c, v) || matchesLess(c, v);
    case '~':
      return matchesTilde(c, v);
    case '^':
      return matchesCaret(c, v);
  }
}

/** `=1.2` is every 1.2.x; `=1.2.3-beta` only that pre-release. */
function matchesExact(c: Comparator, v: ParsedVersion): boolean {
  if (v.major !== c.major) return false;
  if (c.minor !== undefined && v.minor !== c.minor) return false;
  if (c.patch !== undefined && v.patch !== c.patch) return false;
  return comparePre(v.pre, c.pre) === 0;
}

/** Versions above every version the comparator covers: `>1.2` starts at 1.3.0. */
function matchesGreater(c: Comparator, v: ParsedVersion): boolean {
  if (v.major !== c.major) return v.major > c.major;
  if (c.minor === undefined) return false;
  if (v.minor !== c.minor) return v.minor > c.minor;
  if (c.patch === undefined) return false;
  if (v.patch !== c.patch) return v.patch > c.patch;
  return comparePre(v.pre, c.pre) > 0;
}

/** Versions below every version the comparator covers: `<1.2` ends before 1.2.0. */
function matchesLess(c: Comparator, v: ParsedVersion): boolean {
  if (v.major !== c.major) return v.major < c.major;
  if (c.minor === undefined) return false;
  if (v.minor !== c.minor) return v.minor < c.minor;
  if (c.patch === undefined) return false;
  if (v.patch !== c.patch) return v.patch < c.patch;
  return comparePre(v.pre, c.pre) < 0;
}

/** `~1.2.3` is `>=1.2.3, <1.3.0`; `~1.2` is `=1.2`; `~1` is `=1`. */
function matchesTilde(c: Comparator, v: ParsedVersion): boolean {
  if (v.major !== c.major) return false;
  if (c.minor !== undefined && v.minor !== c.minor) return false;
  if (c.patch !== undefined && v.patch !== c.patch) return v.patch > c.patch;
  return comparePre(v.pre, c.pre) >= 0;
}

/** Updates that leave the left-most non-zero part alone: `^1.2.3`, `^0.2.3`, `^0.0.3`. */
function matchesCaret(c: Comparator, v: ParsedVersion): boolean {
  if (v.major !== c.major) return false;
  if (c.minor === undefined) return true;
  if (c.patch === undefined) return c.major > 0n ? v.minor >= c.minor : v.minor === c.minor;
  if (c.major > 0n) {
    if (v.minor !== c.minor) return v.minor > c.minor;
    if (v.patch !== c.patch) return v.patch > c.patch;
  } else if (c.minor > 0n) {
    if (v.minor !== c.minor) return false;
    if (v.patch !== c.patch) return v.patch > c.patch;
  } else if (v.minor !== c.minor || v.patch !== c.patch) {
    return false;
  }
  return comparePre(v.pre, c.pre) >= 0;
}

/** Cargo's opt-in for pre-releases: the comparator names this major.minor.patch with a pre-release. */
function allowsPre(c: Comparator, v: ParsedVersion): boolean {
  return c.major === v.major && c.minor === v.minor && c.patch === v.patch && c.pre.length > 0;
}

/**
 * SemVer 2.0 §11 precedence of pre-releases: no pre-release ranks above any; identifiers are
 * compared left to right, numeric ones as numbers and below alphanumeric ones, alphanumeric ones
 * in ASCII order; a shorter list that is a prefix of a longer one ranks lower.
 */
export function comparePre(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return b.length - a.length;
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) {
    const order = compareIdentifier(a[i] as string, b[i] as string);
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

function compareIdentifier(a: string, b: string): number {
  const aNumeric = /^\d+$/.test(a);
  const bNumeric = /^\d+$/.test(b);
  if (aNumeric && bNumeric) return a.length - b.length || compareAscii(a, b);
  if (aNumeric !== bNumeric) return aNumeric ? -1 : 1;
  return compareAscii(a, b);
}

function compareAscii(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}
