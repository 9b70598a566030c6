/**
 * @module
 * Progress of an export or an import for people: on a terminal, a bar with the totals so far
 * (done, already held, refused or failed, bytes, rate), drawn like the prefetch and mirror bars
 * (`progress.ts`); off a terminal nothing until the command prints its summary line.
 */
import cliProgress from 'cli-progress';
import { formatBytes } from './progress.ts';

/** What became of one file. */
export type BundleOutcome = 'done' | 'held' | 'failed';

/** Counts of an export or import so far. */
export interface BundleCounts {
  total: number;
  done: number;
  held: number;
  failed: number;
  bytes: number;
}

/** Counts files as they are handled, and draws them on a terminal. */
export class BundleProgress {
  readonly counts: BundleCounts;
  readonly #startedAt = Date.now();
  readonly #bar: cliProgress.SingleBar | undefined;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(kind: 'export' | 'import', total: number, tty: boolean) {
    this.counts = { total, done: 0, held: 0, failed: 0, bytes: 0 };
    if (!tty) return;
    const failed = kind === 'export' ? 'failed' : 'refused';
    this.#bar = new cliProgress.SingleBar(
      {
        format: `${kind} {bar} {value}/{total} | done {done} held {held} ${failed} {failed} | {size} | {rate}/s | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 200,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bar.start(total, 0, this.#payload());
    this.#timer = setInterval(() => this.#draw(), 200);
    this.#timer.unref();
  }

  /** Records one file. */
  record(outcome: BundleOutcome, bytes = 0): void {
    this.counts[outcome]++;
    this.counts.bytes += bytes;
  }

  /** Files handled so far. */
  get handled(): number {
    const { done, held, failed } = this.counts;
    return done + held + failed;
  }

  /** Draws the final state and lets go of the terminal. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (!this.#bar) return;
    this.#draw();
    this.#bar.stop();
  }

  #draw(): void {
    this.#bar?.update(this.handled, this.#payload());
  }

  #payload() {
    const seconds = Math.max((Date.now() - this.#startedAt) / 1000, 0.001);
    return {
      ...this.counts,
      size: formatBytes(this.counts.bytes),
      rate: (this.handled / seconds).toFixed(1),
    };
  }
}
