/**
 * @module
 * The supply-chain policy (issue #14): which versions the proxy serves. A deny list withholds
 * what it names; a cooldown (`--min-publish-age`) withholds versions whose `pubtime` is too
 * recent, unless an allow-young rule exempts them. Pure, no I/O: the caller passes `now`.
 */
import { parseIndexLine } from './index-entry.ts';
import { type LineFate, mapIndexLines } from './index-lines.ts';
import type { AllowRule, DenyRule, ListRule } from './policy-lists.ts';
import { coversVersion } from './policy-lists.ts';
import { parsePubtime } from './pubtime.ts';

export type { AllowRule, DenyRule } from './policy-lists.ts';
export { parseAllowYoung, parseDenyList } from './policy-lists.ts';

/**
 * How a withheld version appears in a served index file (`--withheld-as`):
 * - `yanked` (the default): its line is served with `"yanked":true`, all other bytes upstream's.
 *   cargo never picks a yanked version for a new resolve, so it resolves to an older one; a
 *   `Cargo.lock` that pins the version still reaches the download, where cargo prints our 403
 *   and its reason.
 * - `omit`: its line is left out. cargo resolves to an older version the same way, but a lock
 *   file that pins it fails in cargo's resolver ("failed to select a version"), with no reason.
 */
export type WithheldAs = 'yanked' | 'omit';

/** The policy in force. */
export interface Policy {
  /** The cooldown; absent or 0 for none. */
  readonly minPublishAgeMs?: number;
  /** How withheld versions are served; `yanked` when absent. */
  readonly withheldAs?: WithheldAs;
  readonly deny: readonly DenyRule[];
  readonly allowYoung: readonly AllowRule[];
}

/** No cooldown, nothing denied: every version is served. */
export const EMPTY_POLICY: Policy = Object.freeze({
  deny: Object.freeze([]),
  allowYoung: Object.freeze([]),
});

/** What the policy makes of one version. */
export type PolicyDecision =
  | { readonly kind: 'serve' }
  /** `rule` is the deny line as written, without its comment. */
  | { readonly kind: 'denied'; readonly rule: string }
  /** Published at `pubtime`, served from `availableAt` on (both ms since the epoch). */
  | { readonly kind: 'young'; readonly pubtime: number; readonly availableAt: number };

/** A decision that keeps a version from being served. */
export type WithholdDecision = Exclude<PolicyDecision, { kind: 'serve' }>;

/** The facts about a version the policy reads. `pubtime` is ms since the epoch. */
export interface PolicyVersion {
  name: string;
  version: string;
  pubtime?: number;
  yanked: boolean;
}

/** A version withheld from a served index file (marked yanked, or left out), and why. */
export interface WithheldVersion {
  /** As written in the index line (original case). */
  name: string;
  version: string;
  decision: WithholdDecision;
}

/** An index file as served under a policy. */
export interface FilteredIndex {
  /**
   * The file as served: kept lines byte for byte, withheld lines marked yanked or left out; the
   * very Buffer passed in when nothing was withheld.
   */
  body: Buffer;
  withheld: WithheldVersion[];
  /** The earliest time a withheld young version comes of age: the served file changes then. */
  changesAt: number | undefined;
}

const SERVE: PolicyDecision = Object.freeze({ kind: 'serve' });

/** True when the policy can withhold nothing, so callers may skip filtering altogether. */
export function isEmptyPolicy(policy: Policy): boolean {
  return cooldownOf(policy) === undefined && policy.deny.length === 0;
}

/**
 * Decides whether a version is served. The deny list wins over everything, yanked versions
 * included. The cooldown passes yanked versions (cargo still needs them for existing lock files)
 * and versions without a `pubtime` (as cargo does), and allow-young rules exempt from it.
 */
export function decide(policy: Policy, version: PolicyVersion, now: number): PolicyDecision {
  const denied = findRule(policy.deny, version);
  if (denied) return { kind: 'denied', rule: denied.text };
  const cooldown = cooldownOf(policy);
  if (cooldown === undefined || version.yanked || version.pubtime === undefined) return SERVE;
  const availableAt = version.pubtime + cooldown;
  if (now >= availableAt) return SERVE;
  const exempt = findRule(policy.allowYoung, version) !== undefined;
  return exempt ? SERVE : { kind: 'young', pubtime: version.pubtime, availableAt };
}

/** The first rule about this crate (in any case) that covers this version. */
function findRule<Rule extends ListRule>(
  rules: readonly Rule[],
  version: PolicyVersion,
): Rule | undefined {
  const name = version.name.toLowerCase();
  return rules.find((rule) => rule.name === name && coversVersion(rule, version.version));
}

/**
 * Applies the policy to an index file: the lines of withheld versions are marked yanked or left
 * out (see {@link WithheldAs}). Every other byte is upstream's: kept lines keep their exact
 * bytes, order and line endings, a marked line differs only in `false` becoming `true`, and a
 * left-out line goes with its own `\n`. Lines that do not parse are kept (cargo skips them
 * itself). Each line's JSON is parsed once (see {@link readPubtime} for the rare exception);
 * `pubtime` is only read when the cooldown applies.
 */
export function filterIndexFile(body: Buffer, policy: Policy, now: number): FilteredIndex {
  const withheld: WithheldVersion[] = [];
  if (isEmptyPolicy(policy)) return { body, withheld, changesAt: undefined };
  if (!mayWithhold(body, policy, now)) return { body, withheld, changesAt: undefined };
  const policyFor = narrowedByName(policy);
  let changesAt: number | undefined;
  const served = mapIndexLines(body, (line) => {
    const entry = decideLine(line, policyFor, now);
    if (!entry) return true;
    withheld.push(entry);
    if (entry.decision.kind === 'young') {
      changesAt = Math.min(changesAt ?? Number.POSITIVE_INFINITY, entry.decision.availableAt);
    }
    return withheldLine(line, policy.withheldAs);
  });
  return { body: served, withheld, changesAt };
}

/** The key as crates.io writes it; any other spelling is left out rather than rewritten. */
const NOT_YANKED = /"yanked"\s*:\s*false(?=\s*[,}])/;
const YANKED = /"yanked"\s*:\s*true(?=\s*[,}])/;

/**
 * A withheld version's line as served: the same line marked yanked (kept as it is when it already
 * is), or left out. `"yanked"` is a top-level key of every index line, and the
 * only one whose value is a boolean: feature values are arrays and dependency objects have no
 * such key. A line without a readable `"yanked":false` is left out, never re-serialised.
 */
function withheldLine(line: string, withheldAs: WithheldAs | undefined): LineFate {
  if (withheldAs === 'omit') return false;
  if (YANKED.test(line)) return true;
  const match = NOT_YANKED.exec(line);
  if (!match) return false;
  const at = match.index + match[0].lastIndexOf('false');
  return `${line.slice(0, at)}true${line.slice(at + 'false'.length)}`;
}

/** The withheld version a line names, or `undefined` to keep the line. */
function decideLine(
  line: string,
  policyFor: (name: string) => Policy,
  now: number,
): WithheldVersion | undefined {
  const entry = parseIndexLine(line);
  if (!entry) return undefined;
  const policy = policyFor(entry.name);
  const pubtime = cooldownOf(policy) !== undefined && !entry.yanked ? readPubtime(line) : undefined;
  const { name, version, yanked } = entry;
  const decision = decide(policy, { name, version, yanked, pubtime }, now);
  return decision.kind === 'serve' ? undefined : { name, version, decision };
}

/** The cooldown in ms, or `undefined` when there is none (absent, 0, or not a number). */
function cooldownOf(policy: Policy): number | undefined {
  const age = policy.minPublishAgeMs;
  return age !== undefined && age > 0 ? age : undefined;
}

/**
 * The policy with only the rules about one crate, remembered per name: an index file holds one
 * crate, so a long deny list is scanned once per file rather than once per line.
 */
function narrowedByName(policy: Policy): (name: string) => Policy {
  const byName = new Map<string, Policy>();
  return (name) => {
    const lower = name.toLowerCase();
    let narrowed = byName.get(lower);
    if (!narrowed) {
      narrowed = {
        ...policy,
        deny: policy.deny.filter((rule) => rule.name === lower),
        allowYoung: policy.allowYoung.filter((rule) => rule.name === lower),
      };
      byName.set(lower, narrowed);
    }
    return narrowed;
  };
}

const PUBTIME_KEY = '"pubtime"';
/** The key and a plain string value, read from where the key starts (sticky). */
const PUBTIME_ENTRY = /"pubtime"\s*:\s*"([^"\\]*)"/y;

/**
 * The `pubtime` of an index line, without parsing its JSON a second time: crates.io writes one
 * `"pubtime":"…"` per line, found with a string search. When the key appears more than once (a
 * feature named `pubtime`) or its value is not a plain string, the JSON is parsed to be exact.
 * The one reading this gets wrong is a line whose only `pubtime` key sits inside a dependency
 * object, which cargo's schema does not have; an upstream that could write it could as well
 * leave `pubtime` out.
 */
function readPubtime(line: string): number | undefined {
  const at = line.indexOf(PUBTIME_KEY);
  if (at === -1) return undefined;
  if (line.indexOf(PUBTIME_KEY, at + PUBTIME_KEY.length) === -1) {
    PUBTIME_ENTRY.lastIndex = at;
    const match = PUBTIME_ENTRY.exec(line);
    if (match) return parsePubtime(match[1]);
  }
  return parsePubtime((JSON.parse(line) as { pubtime?: unknown }).pubtime);
}

/**
 * The decision about one version of an index file (a download's check), or `undefined` when the
 * file does not list it.
 */
export function decideVersion(
  body: Buffer,
  version: string,
  policy: Policy,
  now: number,
): PolicyDecision | undefined {
  for (const line of body.toString('utf8').split('\n')) {
    const entry = parseIndexLine(line);
    if (entry?.version !== version) continue;
    const pubtime = entry.yanked ? undefined : readPubtime(line);
    return decide(policy, { name: entry.name, version, yanked: entry.yanked, pubtime }, now);
  }
  return undefined;
}

/**
 * A quick look at a whole file before any line is parsed: false when no line can be withheld,
 * which is nearly every file (the served git index filters every file at every refresh). A
 * line can be withheld when a deny rule names its crate, or when its `pubtime` is not older than
 * the cooldown: crates.io writes UTC times (`…Z`), which sort as text, so a `pubtime` is compared
 * with the cutoff as a string; any other form counts as possibly young.
 */
function mayWithhold(body: Buffer, policy: Policy, now: number): boolean {
  const text = body.toString('latin1');
  if (policy.deny.length > 0 && deniedNames(policy).test(text)) return true;
  const cooldown = cooldownOf(policy);
  if (cooldown === undefined) return false;
  const cutoff = new Date(now - cooldown).toISOString();
  for (let at = text.indexOf(PUBTIME_KEY); at !== -1; at = text.indexOf(PUBTIME_KEY, at + 1)) {
    // Any other spelling (spaces, a non-string value) is left to the full parse.
    if (!text.startsWith(PUBTIME_VALUE, at)) return true;
    const start = at + PUBTIME_VALUE.length;
    const value = text.slice(start, text.indexOf('"', start));
    if (!UTC_TIME.test(value) || value >= cutoff.slice(0, value.length)) return true;
  }
  return false;
}

const PUBTIME_VALUE = '"pubtime":"';
/** crates.io's form: `2026-11-20T11:00:00Z`, maybe with fractional seconds. */
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;

/** The names of the deny rules as one pattern over a file's `"name":"…"` keys, per policy. */
const denyPatterns = new WeakMap<Policy, RegExp>();
function deniedNames(policy: Policy): RegExp {
  let pattern = denyPatterns.get(policy);
  if (!pattern) {
    const names = [...new Set(policy.deny.map((rule) => rule.name))].map((name) =>
      name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    );
    pattern = new RegExp(`"name"\\s*:\\s*"(?:${names.join('|')})"`, 'i');
    denyPatterns.set(policy, pattern);
  }
  return pattern;
}
