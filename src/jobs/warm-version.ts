/**
 * @module
 * Warming one version for a prefetch: its sparse index file and its verified `.crate`, with the
 * lock file's checksum held against upstream's index first (supply-chain safety).
 */
import type { CrateCache } from '../cache/crate-cache.ts';
import type { IndexCache } from '../cache/index-cache.ts';
import { isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { crateLabel } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { type CrateVersion, findVersion } from '../registry/index-entry.ts';
import type { LockedCrate } from '../registry/lockfile.ts';
import type { PolicyDecision } from '../registry/policy.ts';
import { type JobRetry, retryJob } from '../upstream/retry-policy.ts';
import type { PackageReport } from './job.ts';

/** What warming needs. */
export interface WarmDeps {
  index: IndexCache;
  crates: CrateCache;
  log: AppLogger;
  retry: JobRetry;
  signal?: AbortSignal;
}

/** Warms one locked crate and says what became of it; never throws. */
export async function warmVersion(deps: WarmDeps, pkg: LockedCrate): Promise<PackageReport> {
  const base = { name: pkg.name, version: pkg.version };
  try {
    const entry = await retryJob(
      () => findInUpstreamIndex(deps.index, pkg),
      deps.retry,
      deps.signal,
    );
    if (!entry) return { ...base, status: 'failed', reason: 'not in the upstream index' };
    if (pkg.checksum !== undefined && pkg.checksum !== entry.checksum) {
      const reason =
        `checksum mismatch: the lock file has ${pkg.checksum}, the upstream index has ` +
        `${entry.checksum}; not cached`;
      deps.log.error(
        { crate: crateLabel(pkg) },
        `SUPPLY-CHAIN WARNING ${crateLabel(pkg)}: ${reason}`,
      );
      return { ...base, status: 'failed', reason };
    }
    if (await deps.crates.has(pkg)) return { ...base, status: 'cached' };
    const fetched = await retryJob(() => deps.crates.fetch(pkg, entry), deps.retry, deps.signal);
    return {
      ...base,
      status: fetched.upstreamBytes > 0 ? 'fetched' : 'cached',
      bytes: fetched.upstreamBytes,
    };
  } catch (err) {
    // A young version waits for its cooldown; a denied one is a failure (prefetch exits 1).
    const decision = isCacherError(err, 'CARGO_CACHER_POLICY')
      ? (err.cause as PolicyDecision)
      : undefined;
    if (decision?.kind === 'young') {
      return { ...base, status: 'skipped', reason: `waiting: ${(err as Error).message}` };
    }
    return { ...base, status: 'failed', reason: (err as Error).message };
  }
}

/**
 * Reads the version's index line through the index cache, which also stores the index file so
 * a fresh client can resolve offline later. A fresh cached file that lacks the version is
 * revalidated once: it may have been published since.
 */
async function findInUpstreamIndex(
  index: IndexCache,
  pkg: LockedCrate,
): Promise<CrateVersion | undefined> {
  const path = indexPath(pkg.name);
  let lookup = await index.get(path);
  let entry = lookup.found ? findVersion(lookup.file.body, pkg.version) : undefined;
  if (!entry && lookup.found && lookup.outcome === 'hit') {
    lookup = await index.get(path, { revalidate: true });
    entry = lookup.found ? findVersion(lookup.file.body, pkg.version) : undefined;
  }
  return entry;
}
