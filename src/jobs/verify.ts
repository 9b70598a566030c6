/**
 * @module
 * Integrity: re-hash every cached crate against its index checksum, walking the catalogue in key
 * order. The `verify` command reports (and with `--repair` removes and re-fetches) what is wrong;
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

/** The crates' key range: keys after `crates/` and below `crates0` ('0' follows '/'). */
const FIRST = 'crates/';
const BELOW = 'crates0';
const PAGE = 100;

/** Checks every stored crate (with `resume`, those after the last position first). */
export async function verifyCache(deps: VerifyDeps, options: VerifyOptions): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, problems: [] };
  const { catalogue } = deps;
  let after = (options.resume && catalogue.getMeta(VERIFY_POSITION)) || FIRST;
  for (;;) {
    const page = catalogue.rowsBetween(after, BELOW, PAGE);
    for (const row of page) {
      if (options.signal?.aborted) return report;
      after = row.key;
      if (row.name !== null && row.version !== null) {
        await verifyOne(deps, options, { name: row.name, version: row.version }, row.key, report);
      }
      if (options.resume) catalogue.setMeta(VERIFY_POSITION, after);
      if (options.pauseMs) await sleep(options.pauseMs);
    }
    if (page.length < PAGE) break;
  }
  // A whole pass done: the next one starts from the first crate.
  if (options.resume) catalogue.setMeta(VERIFY_POSITION, undefined);
  return report;
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
