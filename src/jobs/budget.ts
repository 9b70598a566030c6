/**
 * @module
 * `--max-size` enforced on write: each crate the catalogue records wakes the keeper, and when the
 * crates held are over budget it removes the least recently served unpinned ones at once, in the
 * background (a sweep with only the budget), so the cache is over budget for about as long as a
 * sweep of what is removed takes. Writes that land while a sweep runs queue one more.
 */
import type { AppLogger } from '../logger.ts';
import { type GcDeps, type GcReport, heldBytes, sweep } from './gc.ts';

/** What a {@link BudgetKeeper} needs. */
export interface BudgetKeeperDeps extends GcDeps {
  maxSizeBytes: number;
  pinned: ReadonlySet<string>;
  log: AppLogger;
  /** Told about every sweep that removed something (statistics count evictions). */
  onSweep?: (report: GcReport) => void;
  now?: () => number;
}

/** Keeps the crates held under `--max-size` as they are stored. */
export class BudgetKeeper {
  readonly #deps: BudgetKeeperDeps;
  #unsubscribe: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(deps: BudgetKeeperDeps) {
    this.#deps = deps;
  }

  /** Listens to the catalogue, and checks once now (the budget may have shrunk since). */
  start(): void {
    this.#unsubscribe = this.#deps.catalogue.onStored(() => this.check());
    this.check();
  }

  /** Starts a sweep when over budget (or queues one behind the running sweep). */
  check(): void {
    if (heldBytes(this.#deps.catalogue) <= this.#deps.maxSizeBytes) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#sweepUntilUnder().finally(() => {
      this.#running = undefined;
    });
  }

  /** Resolves when no sweep is running. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.idle();
  }

  async #sweepUntilUnder(): Promise<void> {
    do {
      this.#again = false;
      // Off the write's own call stack: the put that triggered this returns first.
      await new Promise((resolve) => setImmediate(resolve));
      try {
        const { maxSizeBytes, pinned } = this.#deps;
        const report = await sweep(
          this.#deps,
          { maxSizeBytes, pinned },
          (this.#deps.now ?? Date.now)(),
        );
        if (report.removed.length > 0) this.#report(report);
      } catch (err) {
        this.#deps.log.warn({ err }, '--max-size: eviction failed');
      }
    } while (this.#again);
  }

  #report(report: GcReport): void {
    this.#deps.log.info(
      { removed: report.removed.length, freedBytes: report.freedBytes },
      `--max-size: evicted ${report.removed.length} crates`,
    );
    this.#deps.onSweep?.(report);
  }
}
