/**
 * @module
 * The server's background upkeep: `--max-size` kept on every write, the expiration sweep every
 * `--gc-interval` (when `--expire-after` or `--max-size` is set), the integrity check every
 * `--verify-every`, and the reconcile of the catalogue with the store at most once a day (right
 * after the first start on a store written without a catalogue, which it adopts). None of them
 * delays startup or the request path.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalogue } from '../cache/catalogue.ts';
import type { CrateCache } from '../cache/crate-cache.ts';
import type { IndexCache } from '../cache/index-cache.ts';
import type { AppLogger } from '../logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { BudgetKeeper } from './budget.ts';
import { type GcPolicy, type GcReport, sweep } from './gc.ts';
import {
  RECONCILE_EVERY_MS,
  RECONCILED_AT,
  type ReconcileReport,
  reconcileWithStore,
} from './reconcile.ts';
import { type VerifyReport, verifyCache } from './verify.ts';

/** After a reconcile that failed (storage unreachable), the next try. */
const RECONCILE_RETRY_MS = 10 * 60 * 1000;

/** What {@link Maintenance} needs. */
export interface MaintenanceDeps {
  /** The store as the caches write it (tracked by the catalogue). */
  store: BlobStore;
  /** The store itself, for the reconcile's listing (default: `store`). */
  rawStore?: BlobStore;
  catalogue: Catalogue;
  index: IndexCache;
  crates: CrateCache;
  /** What the statistics know of when a crate was last served (for adopted crates). */
  lastServed?: (label: string) => number | undefined;
  log: AppLogger;
  policy: Omit<GcPolicy, 'dryRun'>;
  gcIntervalMs: number;
  verifyEveryMs: number | undefined;
  /** Fetch missing index files of stored crates in the reconcile (off with `--offline`). */
  restoreIndex: boolean;
  /** Reconcile in the background (daily, and at once when never done); default true. */
  reconcile?: boolean;
  /** Reconcile at once, whenever the last one was (the last server was killed). */
  reconcileNow?: boolean;
  /** Told about every sweep and check (statistics count evictions and problems). */
  onSweep?: (report: GcReport) => void;
  onVerify?: (report: VerifyReport) => void;
  onReconcile?: (report: ReconcileReport) => void;
  /** The instance's clock: "not served for --expire-after" is measured against it. */
  now?: () => number;
}

/** Runs the background upkeep loops. */
export class Maintenance {
  readonly #deps: MaintenanceDeps;
  readonly #stop = new AbortController();
  readonly #loops: Promise<void>[] = [];
  readonly #budget: BudgetKeeper | undefined;

  constructor(deps: MaintenanceDeps) {
    this.#deps = deps;
    const { maxSizeBytes, pinned } = deps.policy;
    if (maxSizeBytes !== undefined) {
      this.#budget = new BudgetKeeper({
        store: deps.store,
        catalogue: deps.catalogue,
        maxSizeBytes,
        pinned,
        log: deps.log,
        ...(deps.onSweep && { onSweep: deps.onSweep }),
        ...(deps.now && { now: deps.now }),
      });
    }
  }

  /** The `--max-size` keeper, when a budget is set. */
  get budget(): BudgetKeeper | undefined {
    return this.#budget;
  }

  /** Starts whatever the settings ask for. */
  start(): void {
    const { policy, gcIntervalMs, verifyEveryMs } = this.#deps;
    this.#budget?.start();
    if (this.#deps.reconcile !== false) {
      this.#loops.push(this.#reconcileDaily());
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
    await this.#budget?.close();
    await Promise.allSettled(this.#loops);
  }

  /** One expiration sweep. */
  async runGc(): Promise<GcReport> {
    const now = (this.#deps.now ?? Date.now)();
    const report = await sweep(this.#deps, this.#deps.policy, now);
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
      resume: true,
    });
    this.#deps.onVerify?.(report);
    return report;
  }

  /**
   * One reconcile of the catalogue with the store (`undefined` when another instance on the
   * bucket is listing it: the next try uses its listing).
   */
  async runReconcile(): Promise<ReconcileReport | undefined> {
    const deps = this.#deps;
    const report = await reconcileWithStore({
      store: deps.rawStore ?? deps.store,
      trackedStore: deps.store,
      catalogue: deps.catalogue,
      log: deps.log,
      ...(deps.restoreIndex && { index: deps.index }),
      ...(deps.lastServed && { lastServed: deps.lastServed }),
      ...(deps.now && { now: deps.now }),
      signal: this.#stop.signal,
    });
    if (!report) {
      deps.log.info('reconcile: another instance is listing the bucket; trying again later');
      return undefined;
    }
    if (report.adopted + report.dropped + report.resized + report.cratesRemoved > 0) {
      deps.log.notice(report, `reconcile: adopted ${report.adopted}, dropped ${report.dropped}`);
    }
    deps.onReconcile?.(report);
    this.#budget?.check();
    return report;
  }

  /**
   * Reconciles when the last reconcile is a day old (at once when there was none: a new
   * catalogue, perhaps on a store an earlier cargo-cacher wrote; or when the last server was
   * killed), then once a day.
   */
  async #reconcileDaily(): Promise<void> {
    const now = this.#deps.now ?? Date.now;
    let due = this.#deps.reconcileNow === true;
    while (!this.#stop.signal.aborted) {
      const last = due ? 0 : Number(this.#deps.catalogue.getMeta(RECONCILED_AT) ?? 0);
      due = false;
      const wait = Math.max(0, last + RECONCILE_EVERY_MS - now());
      try {
        // A timer longer than 2^31 - 1 ms fires at once: wake up at least daily and look again.
        await sleep(Math.min(wait, RECONCILE_EVERY_MS), undefined, { signal: this.#stop.signal });
      } catch {
        return;
      }
      if (last + RECONCILE_EVERY_MS > now()) continue;
      await this.#guard('reconcile', () => this.runReconcile());
      if (Number(this.#deps.catalogue.getMeta(RECONCILED_AT) ?? 0) === last) {
        // It failed (or was stopped): try again later, not in a loop.
        await sleep(RECONCILE_RETRY_MS, undefined, { signal: this.#stop.signal }).catch(
          () => undefined,
        );
      }
    }
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
