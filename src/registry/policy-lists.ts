/**
 * @module
 * The deny list (`--deny`) and the cooldown exemptions (`--allow-young`): one rule a line,
 * `name`, `name@version` or (deny only) `name@<requirement>`, with `#` comments. Pure, no I/O.
 */
import { isValidCrateName } from './crate-name.ts';
import type { VersionRequirement } from './semver-req.ts';
import { parseRequirement, satisfies } from './semver-req.ts';
import { isValidVersion } from './version.ts';

/** One line of a policy list. */
export interface ListRule {
  /** The crate name, lowercased: crates.io names are unique case-insensitively. */
  readonly name: string;
  /** The versions the rule covers; absent for every version. */
  readonly versions?: VersionRequirement;
  /** The rule as written, without its comment: `foo@>=1.2, <1.4`. */
  readonly text: string;
  /** Where it was read: `deny.txt:3`. */
  readonly location: string;
}

/** A `--deny` line: the versions it names are never served. */
export type DenyRule = ListRule;
/** An `--allow-young` line: the versions it names skip the cooldown (never the deny list). */
export type AllowRule = ListRule;

type VersionReader = (text: string) => VersionRequirement;

/**
 * Reads a deny list. `name@1.2.3` names exactly that version (as `=1.2.3`, build metadata
 * ignored); anything else after `@` is a cargo requirement, so `foo@1.2` is `^1.2` as in
 * `Cargo.toml`. Throws an `Error` whose one-line message is `${source}:${line}: <what is wrong>`.
 */
export function parseDenyList(text: string, source: string): DenyRule[] {
  return parseList(text, source, readDenyVersions);
}

/** Reads an allow-young list (`name` or `name@version`); errors as {@link parseDenyList}. */
export function parseAllowYoung(text: string, source: string): AllowRule[] {
  return parseList(text, source, readExactVersion);
}

/** True when the rule covers this version, whatever crate it is about. */
export function coversVersion(rule: ListRule, version: string): boolean {
  return rule.versions === undefined || satisfies(rule.versions, version);
}

function parseList(text: string, source: string, readVersions: VersionReader): ListRule[] {
  const rules: ListRule[] = [];
  // A byte order mark left by an editor is not part of the first crate name.
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, index) => {
    const hash = raw.indexOf('#');
    const line = (hash === -1 ? raw : raw.slice(0, hash)).trim();
    if (line === '') return;
    const location = `${source}:${index + 1}`;
    try {
      rules.push(parseRule(line, location, readVersions));
    } catch (error) {
      throw new Error(`${location}: ${(error as Error).message}`);
    }
  });
  return rules;
}

function parseRule(line: string, location: string, readVersions: VersionReader): ListRule {
  const at = line.indexOf('@');
  const name = (at === -1 ? line : line.slice(0, at)).trim();
  if (name === '' && at !== -1) throw new Error('missing crate name before "@"');
  if (!isValidCrateName(name)) throw new Error(`invalid crate name ${JSON.stringify(name)}`);
  const rule = { name: name.toLowerCase(), text: line, location };
  if (at === -1) return rule;
  const versions = line.slice(at + 1).trim();
  if (versions === '') throw new Error('missing version after "@"');
  return { ...rule, versions: readVersions(versions) };
}

function readDenyVersions(text: string): VersionRequirement {
  if (isValidVersion(text)) return parseRequirement(`=${text}`);
  try {
    return parseRequirement(text);
  } catch (error) {
    throw new Error(
      `invalid version requirement ${JSON.stringify(text)}: ${(error as Error).message}`,
    );
  }
}

function readExactVersion(text: string): VersionRequirement {
  if (!isValidVersion(text)) {
    throw new Error(`invalid version ${JSON.stringify(text)} (expected one version, like 1.2.3)`);
  }
  return parseRequirement(`=${text}`);
}
