/**
 * @module
 * Integrity: re-hash every cached crate against its index checksum, and every toolchain file
 * against the sha256 recorded when it was stored (verified then against its manifest or
 * sidecar), walking the catalogue in key order. The `verify` command reports (and with `--repair` removes and re-fetches) what is wrong;
 * the server's background check (`--verify-every`) quarantines a corrupt crate at once, so it is
 * never served again and is fetched anew on the next request. The background check notes its
 * position in the catalogue after every crate, so a restart resumes the pass where it stopped
 * instead of starting over.
 */
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalogue } from '../cache/catalogue.ts';
import type { CrateCache } from '../cache/crate-cache.ts';
import type { IndexCache } from '../cache/index-cache.ts';
import type { AppLogger } from '../logger.ts';
import { type CrateId, crateLabel } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { findVersion } from '../registry/index-entry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { quarantine } from './quarantine.ts';

/** What can be wrong with a stored crate. */
export type ProblemKind = 'mismatch' | 'unreadable' | 'not-in-index';

/** One finding. */
export interface VerifyProblem {
  key: string;
  crate: string;
  kind: ProblemKind;
  detail: string;
  /** What was done about it. */
  action: 'reported' | 'quarantined' | 'repaired' | 'removed' | 'repair-failed';
}

/** What a pass found. */
export interface VerifyReport {
  checked: number;
  problems: VerifyProblem[];
}

/** What verifying needs. */
export interface VerifyDeps {
  store: BlobStore;
  catalogue: Catalogue;
  index: IndexCache;
  crates: CrateCache;
  log: AppLogger;
}

/** How to treat problems. */
export interface VerifyOptions {
  /** `report` only; `quarantine` moves corrupt files aside; `repair` re-fetches them. */
  mode: 'report' | 'quarantine' | 'repair';
  /** Pause between files, so a background pass stays in the background. */
  pauseMs?: number;
  signal?: AbortSignal;
  /** Start where the last pass stopped, and note the position as it goes (the server's check). */
  resume?: boolean;
}

/** The catalogue meta entry holding the key of the last crate the background check verified. */
export const VERIFY_POSITION = 'verify_position';

/**
 * The key ranges checked, in key order: crates (keys after `crates/` and below `crates0`, '0'
 * following '/'), then toolchain files.
 */
const RANGES = [
  { first: 'crates/', below: 'crates0' },
  { first: 'toolchains/', below: 'toolchains0' },
] as const;
const PAGE = 100;

/** Checks every stored crate and toolchain file (with `resume`, from the last position on). */
export async function verifyCache(deps: VerifyDeps, options: VerifyOptions): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, problems: [] };
  const { catalogue } = deps;
  const position = (options.resume && catalogue.getMeta(VERIFY_POSITION)) || '';
  for (const range of RANGES) {
    if (position >= range.below) continue;
    const from = position.startsWith(range.first) ? position : range.first;
    const finished = await verifyRange(deps, options, from, range.below, report);
    if (!finished) return report;
  }
  // A whole pass done: the next one starts from the first crate.
  if (options.resume) catalogue.setMeta(VERIFY_POSITION, undefined);
  return report;
}

/** Checks the rows after `after` and below `below`; false when stopped before the end. */
async function verifyRange(
  deps: VerifyDeps,
  options: VerifyOptions,
  after: string,
  below: string,
  report: VerifyReport,
): Promise<boolean> {
  const { catalogue } = deps;
  let last = after;
  for (;;) {
    const page = catalogue.rowsBetween(last, below, PAGE);
    for (const row of page) {
      if (options.signal?.aborted) return false;
      last = row.key;
      if (row.area === 'toolchains') {
        await verifyToolchainFile(deps, options, row.key, row.sha256, report);
      } else if (row.name !== null && row.version !== null) {
        await verifyOne(deps, options, { name: row.name, version: row.version }, row.key, report);
      }
      if (options.resume) catalogue.setMeta(VERIFY_POSITION, last);
      if (options.pauseMs) await sleep(options.pauseMs);
    }
    if (page.length < PAGE) return true;
  }
}

/**
 * A toolchain file against the sha256 recorded when it was stored (nothing to compare with for
 * a file a reconcile adopted). A bad one is moved aside (or, reporting only, reported); it is
 * fetched again, and verified again, when a client or the mirror next asks for it.
 */
async function verifyToolchainFile(
  deps: VerifyDeps,
  options: VerifyOptions,
  key: string,
  recorded: string | null,
  report: VerifyReport,
): Promise<void> {
  if (recorded === null) return;
  report.checked++;
  const label = key.slice('toolchains/'.length);
  let finding: Finding;
  try {
    const actual = await hashBlob(deps.store, key);
    if (actual === recorded) {
      deps.catalogue.markVerified(key, actual);
      return;
    }
    const detail = `sha256 ${actual}, recorded ${recorded}`;
    finding = { key, crate: label, kind: 'mismatch', detail };
  } catch (err) {
    finding = { key, crate: label, kind: 'unreadable', detail: (err as Error).message };
  }
  deps.log.error({ key, kind: finding.kind }, `cache integrity: ${label} ${finding.detail}`);
  if (options.mode === 'report') {
    report.problems.push({ ...finding, action: 'reported' });
    return;
  }
  await quarantine(deps.store, key);
  report.problems.push({
    ...finding,
    action: options.mode === 'repair' ? 'removed' : 'quarantined',
  });
}

async function verifyOne(
  deps: VerifyDeps,
  options: VerifyOptions,
  id: CrateId,
  key: string,
  report: VerifyReport,
): Promise<void> {
  report.checked++;
  const checked = await checkCrate(deps, key, id);
  if ('sha256' in checked) {
    deps.catalogue.markVerified(key, checked.sha256);
    return;
  }
  if (checked.finding) {
    report.problems.push(await handleProblem(deps, options.mode, id, checked.finding));
  }
}

type Finding = Omit<VerifyProblem, 'action'>;

/** The crate's sha256 when it matched its index line, else what is wrong (or nothing to say). */
async function checkCrate(
  deps: VerifyDeps,
  key: string,
  id: CrateId,
): Promise<{ sha256: string } | { finding: Finding | undefined }> {
  const crate = crateLabel(id);
  let expected: string | undefined;
  try {
    expected = await expectedChecksum(deps.index, id);
  } catch (err) {
    // No index to compare with right now (upstream down, offline): nothing to say yet.
    deps.log.debug({ crate, err }, 'verify: index unavailable');
    return { finding: undefined };
  }
  if (expected === undefined) {
    const detail = 'the upstream index does not list this version';
    return { finding: { key, crate, kind: 'not-in-index', detail } };
  }
  let actual: string;
  try {
    actual = await hashBlob(deps.store, key);
  } catch (err) {
    return { finding: { key, crate, kind: 'unreadable', detail: (err as Error).message } };
  }
  if (actual === expected) return { sha256: actual };
  const detail = `sha256 ${actual}, index says ${expected}`;
  return { finding: { key, crate, kind: 'mismatch', detail } };
}

/** The index checksum, from the cached index file, else through the index cache. */
async function expectedChecksum(index: IndexCache, id: CrateId): Promise<string | undefined> {
  const path = indexPath(id.name);
  const cached = await index.peek(path);
  const fromCache = cached && findVersion(cached.body, id.version);
  if (fromCache) return fromCache.checksum;
  const lookup = await index.get(path, { revalidate: cached !== undefined });
  return lookup.found ? findVersion(lookup.file.body, id.version)?.checksum : undefined;
}

async function hashBlob(store: BlobStore, key: string): Promise<string> {
  const opened = await store.open(key);
  if (!opened) throw new Error('vanished while checking');
  const hash = createHash('sha256');
  await pipeline(opened.stream, hash);
  return hash.digest('hex');
}

async function handleProblem(
  deps: VerifyDeps,
  mode: VerifyOptions['mode'],
  id: CrateId,
  finding: Finding,
): Promise<VerifyProblem> {
  deps.log.error(
    { crate: finding.crate, kind: finding.kind },
    `cache integrity: ${finding.crate} ${finding.detail}`,
  );
  if (mode === 'report') return { ...finding, action: 'reported' };
  await quarantine(deps.store, finding.key);
  if (mode === 'quarantine') return { ...finding, action: 'quarantined' };
  if (finding.kind === 'not-in-index') return { ...finding, action: 'removed' };
  try {
    await deps.crates.fetch(id);
    return { ...finding, action: 'repaired' };
  } catch (err) {
    return {
      ...finding,
      detail: `${finding.detail}; re-fetch failed: ${(err as Error).message}`,
      action: 'repair-failed',
    };
  }
}
