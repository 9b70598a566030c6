/**
 * @module
 * Mirroring one version, as both mirrors do it (the full one, `-a`, and the filtered one,
 * `-a --mirror-filter`): nothing when the catalogue holds it, else a verified download with
 * retries; and how a version the policy withholds is reported.
 */
import type { CrateCache } from '../cache/crate-cache.ts';
import type { CrateVersion } from '../registry/index-entry.ts';
import type { WithheldVersion } from '../registry/policy.ts';
import { type JobRetry, retryJob } from '../upstream/retry-policy.ts';
import type { PackageReport } from './job.ts';

/** What storing a version needs. */
export interface StoreDeps {
  crates: CrateCache;
  retry: JobRetry;
  signal?: AbortSignal;
}

/**
 * Stores one version unless it is held: `cached`, `fetched` or `failed` (with why); never throws.
 * The caller has applied the policy already (`policyChecked`), from the index file it read.
 */
export async function storeVersion(deps: StoreDeps, entry: CrateVersion): Promise<PackageReport> {
  const id = { name: entry.name, version: entry.version };
  try {
    if (await deps.crates.has(id)) return { ...id, status: 'cached' };
    const fetched = await retryJob(
      () => deps.crates.fetch(id, entry, { policyChecked: true }),
      deps.retry,
      deps.signal,
    );
    return { ...id, status: 'fetched', bytes: fetched.upstreamBytes };
  } catch (err) {
    return { ...id, status: 'failed', reason: (err as Error).message };
  }
}

/** Why a version was skipped: denied, or waiting for its cooldown. */
export function describeWithheld(decision: WithheldVersion['decision']): string {
  if (decision.kind === 'denied') return `denied by the supply-chain policy ("${decision.rule}")`;
  return `waiting: published ${new Date(decision.pubtime).toISOString()}, taken from ${new Date(decision.availableAt).toISOString()}`;
}
