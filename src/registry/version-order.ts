/**
 * @module
 * The order of semantic versions (SemVer 2.0 §11), for picking the newest of several. Pure, no
 * I/O. Build metadata does not take part in precedence; two versions that differ only in it are
 * ordered by their text, so a sort is still deterministic.
 */
import { comparePre } from './semver-req.ts';
import { isValidVersion } from './version.ts';

/** A version split into what precedence compares. */
export interface VersionKey {
  readonly major: bigint;
  readonly minor: bigint;
  readonly patch: bigint;
  readonly pre: readonly string[];
  readonly text: string;
}

/** Reads a version into its {@link VersionKey}, or `undefined` when it is not valid semver. */
export function versionKey(version: string): VersionKey | undefined {
  if (!isValidVersion(version)) return undefined;
  const plus = version.indexOf('+');
  const withoutBuild = plus === -1 ? version : version.slice(0, plus);
  const dash = withoutBuild.indexOf('-');
  const core = dash === -1 ? withoutBuild : withoutBuild.slice(0, dash);
  const [major = '0', minor = '0', patch = '0'] = core.split('.');
  const pre = dash === -1 ? [] : withoutBuild.slice(dash + 1).split('.');
  return { major: BigInt(major), minor: BigInt(minor), patch: BigInt(patch), pre, text: version };
}

/** Negative when `a` precedes `b`, positive when it follows, 0 for the same text. */
export function compareVersionKeys(a: VersionKey, b: VersionKey): number {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1;
  const pre = comparePre(a.pre, b.pre);
  if (pre !== 0) return pre;
  if (a.text === b.text) return 0;
  return a.text < b.text ? -1 : 1;
}

/** True when the version carries a pre-release tag (`1.0.0-beta.1`). */
export function isPreRelease(key: VersionKey): boolean {
  return key.pre.length > 0;
}
