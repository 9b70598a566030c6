/**
 * @module
 * The server's background upkeep: the expiration sweep every `--gc-interval` (when `--max-size`
 * or `--expire-after` is set), the integrity check every `--verify-every`, and at startup the
 * repair of crates stored without their index file (a crash between the two writes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CrateCache } from '../cache/crate-cache.ts';
import { type IndexCache, indexKey } from '../cache/index-cache.ts';
import type { AppLogger } from '../logger.ts';
import { crateLabel, parseCrateKey } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { findVersion } from '../registry/index-entry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { type GcPolicy, type GcReport, sweep, type UsageSource } from './gc.ts';
import { type VerifyReport, verifyCache } from './verify.ts';

/** What {@link Maintenance} needs. */
export interface MaintenanceDeps {
  store: BlobStore;
  index: IndexCache;
  crates: CrateCache;
  usage: UsageSource;
  log: AppLogger;
  policy: Omit<GcPolicy, 'dryRun'>;
  gcIntervalMs: number;
  verifyEveryMs: number | undefined;
  /** Fetch missing index files of stored crates at startup (off with `--offline`). */
  restoreIndex: boolean;
  /** Told about every sweep and check (statistics count evictions and problems). */
  onSweep?: (report: GcReport) => void;
  onVerify?: (report: VerifyReport) => void;
  /** The instance's clock: "not served for --expire-after" is measured against it. */
  now?: () => number;
}

/** Runs the background upkeep loops. */
export class Maintenance {
  readonly #deps: MaintenanceDeps;
  readonly #stop = new AbortController();
  readonly #loops: Promise<void>[] = [];

  constructor(deps: MaintenanceDeps) {
    this.#deps = deps;
  }

  /** Starts whatever the settings ask for. */
  start(): void {
    const { policy, gcIntervalMs, verifyEveryMs } = this.#deps;
    if (this.#deps.restoreIndex) {
      this.#loops.push(this.#guard('index repair', () => this.restoreIndexEntries()));
    }
    if (policy.maxSizeBytes !== undefined || policy.expireAfterMs !== undefined) {
      this.#loops.push(this.#every(gcIntervalMs, 'expiration sweep', () => this.runGc()));
    }
    if (verifyEveryMs !== undefined) {
      this.#loops.push(this.#every(verifyEveryMs, 'integrity check', () => this.runVerify()));
    }
  }

  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#loops);
  }

  /** One expiration sweep. */
  async runGc(): Promise<GcReport> {
    const now = (this.#deps.now ?? Date.now)();
    const report = await sweep(this.#deps.store, this.#deps.usage, this.#deps.policy, now);
    if (report.removed.length > 0) {
      this.#deps.log.notice(
        {
          removed: report.removed.length,
          freedBytes: report.freedBytes,
          remainingBytes: report.remainingBytes,
        },
        `expiration removed ${report.removed.length} files`,
      );
    }
    this.#deps.onSweep?.(report);
    return report;
  }

  /** One background integrity pass: corrupt crates are quarantined at once. */
  async runVerify(): Promise<VerifyReport> {
    const report = await verifyCache(this.#deps, {
      mode: 'quarantine',
      pauseMs: 2,
      signal: this.#stop.signal,
    });
    this.#deps.onVerify?.(report);
    return report;
  }

  /**
   * Stored crates whose index file is not cached get it fetched again; a version the index no
   * longer lists cannot be verified, so it is removed.
   */
  async restoreIndexEntries(): Promise<number> {
    let removed = 0;
    const checked = new Set<string>();
    for await (const blob of this.#deps.store.list('crates')) {
      const id = parseCrateKey(blob.key);
      const path = id && indexPath(id.name);
      if (!id || !path || this.#stop.signal.aborted) continue;
      if (!checked.has(path) && (await this.#deps.store.stat(indexKey(path)))) checked.add(path);
      if (checked.has(path)) continue;
      const lookup = await this.#deps.index.get(path);
      if (!lookup.found || !findVersion(lookup.file.body, id.version)) {
        this.#deps.log.warn(
          { crate: crateLabel(id) },
          'removing a stored crate its index does not list',
        );
        await this.#deps.store.delete(blob.key);
        removed++;
      }
    }
    return removed;
  }

  async #every(intervalMs: number, name: string, task: () => Promise<unknown>): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        await sleep(intervalMs, undefined, { signal: this.#stop.signal });
      } catch {
        return;
      }
      await this.#guard(name, task);
    }
  }

  async #guard(name: string, task: () => Promise<unknown>): Promise<void> {
    try {
      await task();
    } catch (err) {
      this.#deps.log.warn({ err }, `${name} failed`);
    }
  }
}
