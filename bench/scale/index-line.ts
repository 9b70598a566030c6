/**
 * @module
 * The versions of one synthetic crate, their `Cargo.toml` and their index lines in crates.io's
 * shape: semver walks, `pubtime`, realistic dependency objects on other generated crates,
 * features (some in `features2` with `v: 2`), about 3 % yanked.
 */
import { chance, intBetween, pick, type Random } from './random.ts';

/** A crate another crate can depend on: its name and a requirement matching its versions. */
export interface DepTarget {
  name: string;
  req: string;
}

/** One dependency object of an index line (crates.io's field order). */
export interface IndexDep {
  name: string;
  req: string;
  features: string[];
  optional: boolean;
  default_features: boolean;
  target: string | null;
  kind: 'normal' | 'dev' | 'build';
  package?: string;
}

/** One version of a crate before it is packed (the checksum comes from the packed file). */
export interface VersionDraft {
  name: string;
  vers: string;
  deps: IndexDep[];
  features: Record<string, string[]>;
  features2?: Record<string, string[]>;
  yanked: boolean;
  links: string | null;
  rustVersion?: string;
  pubtime: string;
}

const TARGETS = ['cfg(windows)', 'cfg(unix)', 'cfg(target_os = "linux")', 'wasm32-unknown-unknown'];
const START = Date.UTC(2015, 4, 15);
const END = Date.UTC(2025, 11, 1);

/** The crate-level dependencies (versions share them, as real crates mostly do). */
export function drawDeps(next: Random, known: readonly DepTarget[]): IndexDep[] {
  if (known.length === 0) return [];
  const count = Math.min(10, Math.floor(-Math.log(1 - next()) * 2.2));
  const byName = new Map<string, IndexDep>();
  for (let i = 0; i < count; i++) {
    const target = pick(next, known);
    const kindRoll = next();
    const dep: IndexDep = {
      name: target.name,
      req: target.req,
      features: chance(next, 0.2) ? ['std'] : [],
      optional: chance(next, 0.15),
      default_features: !chance(next, 0.1),
      target: chance(next, 0.1) ? pick(next, TARGETS) : null,
      kind: kindRoll < 0.8 ? 'normal' : kindRoll < 0.95 ? 'dev' : 'build',
    };
    // A renamed dependency (`foo = { package = "bar" }`) is listed under its new name.
    if (chance(next, 0.02)) {
      dep.package = dep.name;
      dep.name = `${dep.name.toLowerCase()}_renamed`;
    }
    byName.set(`${dep.name}/${dep.kind}`, dep);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** `count` versions of `name`, oldest first. */
export function drawVersions(
  next: Random,
  name: string,
  count: number,
  deps: IndexDep[],
): VersionDraft[] {
  let [major, minor, patch] = chance(next, 0.7) ? [0, 1, 0] : [1, 0, 0];
  let time = START + next() * (END - START);
  const step = (END - time) / (count + 1);
  const links = chance(next, 0.02) ? name.toLowerCase() : null;
  const drafts: VersionDraft[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) [major, minor, patch] = bump(next, major, minor, patch);
    time += step * (0.2 + next() * 1.6);
    drafts.push(draft(next, name, `${major}.${minor}.${patch}${tag(next)}`, deps, time, links));
  }
  return drafts;
}

function bump(next: Random, major: number, minor: number, patch: number): [number, number, number] {
  const roll = next();
  if (roll < 0.7) return [major, minor, patch + 1];
  if (roll < 0.96) return [major, minor + 1, 0];
  return [major + 1, 0, 0];
}

/** Rare pre-release and build-metadata tags (`+` must survive the dl URL). */
function tag(next: Random): string {
  const roll = next();
  if (roll < 0.03) return `-${pick(next, ['alpha', 'beta', 'rc'])}.${intBetween(next, 1, 4)}`;
  if (roll < 0.033) return `+build.${intBetween(next, 1, 99)}`;
  return '';
}

function draft(
  next: Random,
  name: string,
  vers: string,
  crateDeps: IndexDep[],
  time: number,
  links: string | null,
): VersionDraft {
  const deps = crateDeps.filter(() => !chance(next, 0.05));
  const features: Record<string, string[]> = {};
  if (chance(next, 0.5)) {
    features.default = ['std'];
    features.std = [];
  }
  const optional = deps.filter((dep) => dep.optional);
  const useFeatures2 = optional.length > 0 && chance(next, 0.3);
  const version: VersionDraft = {
    name,
    vers,
    deps,
    features,
    yanked: chance(next, 0.03),
    links,
    pubtime: `${new Date(Math.min(time, END)).toISOString().slice(0, 19)}Z`,
  };
  if (useFeatures2) {
    version.features2 = Object.fromEntries(optional.map((dep) => [dep.name, [`dep:${dep.name}`]]));
  } else {
    for (const dep of optional) features[dep.name] = [`dep:${dep.name}`];
  }
  if (chance(next, 0.2)) version.rustVersion = `1.${intBetween(next, 56, 85)}`;
  return version;
}

/** The index line, keys in crates.io's order, no trailing newline. */
export function indexLine(version: VersionDraft, cksum: string): string {
  return JSON.stringify({
    name: version.name,
    vers: version.vers,
    deps: version.deps,
    cksum,
    features: version.features,
    yanked: version.yanked,
    links: version.links,
    ...(version.rustVersion !== undefined && { rust_version: version.rustVersion }),
    ...(version.features2 !== undefined && { v: 2, features2: version.features2 }),
    pubtime: version.pubtime,
  });
}

/** A short `Cargo.toml` for the packed crate (its normal dependencies listed). */
export function cargoToml(version: VersionDraft): string {
  const lines = [
    '[package]',
    `name = ${JSON.stringify(version.name)}`,
    `version = ${JSON.stringify(version.vers)}`,
    'edition = "2021"',
    'description = "Synthetic crate of the cargo-cacher scale benchmark"',
    'license = "MIT"',
    '',
    '[dependencies]',
  ];
  for (const dep of version.deps.filter((d) => d.kind === 'normal')) {
    lines.push(`${dep.name} = ${JSON.stringify(dep.req)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The requirement other crates use for this one: `^{major}.{minor}` of its first version. */
export function requirementFor(firstVersion: string): string {
  const [major, minor] = firstVersion.split('.');
  return major === '0' ? `^0.${minor}` : `^${major}`;
}
