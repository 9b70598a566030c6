/**
 * @module
 * Semantic versions as crates.io accepts them. Pure functions, no I/O.
 */

/**
 * SemVer 2.0.0 (semver.org, the official regex), which is what crates.io requires of `vers`.
 * Build metadata (`+build`) is allowed; cargo does not percent-encode it in download URLs.
 */
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** Longest version string we accept; real ones are far shorter. */
const MAX_VERSION_LENGTH = 128;

/** True when `version` is a valid semantic version. */
export function isValidVersion(version: string): boolean {
  return version.length <= MAX_VERSION_LENGTH && SEMVER.test(version);
}
