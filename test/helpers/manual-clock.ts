/**
 * @module
 * A clock that moves only when a test says so, with sleeps that end when it passes their
 * deadline: time-dependent code (rate limits, TTLs) is tested without waiting.
 */

/** A hand-moved clock; pass `now` and `sleep` to the code under test. */
export class ManualClock {
  #ms: number;
  readonly #sleepers: { until: number; wake: () => void }[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#ms = startMs;
  }

  /** The current time (ms since epoch). */
  readonly now = (): number => this.#ms;

  /** Resolves once {@link advance} has moved the clock `ms` past now. */
  readonly sleep = (ms: number): Promise<void> =>
    new Promise((wake) => {
      this.#sleepers.push({ until: this.#ms + Math.max(0, ms), wake });
    });

  /** Sleeps not yet over. */
  get sleeping(): number {
    return this.#sleepers.length;
  }

  /**
   * Moves the clock by `ms` and wakes every sleeper whose deadline passed, then lets the woken
   * code run (a few turns of the event loop) before resolving.
   */
  async advance(ms: number): Promise<void> {
    this.#ms += ms;
    const due = this.#sleepers.filter((sleeper) => sleeper.until <= this.#ms);
    for (const sleeper of due) {
      this.#sleepers.splice(this.#sleepers.indexOf(sleeper), 1);
      sleeper.wake();
    }
    await settle();
  }
}

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle(turns = 3): Promise<void> {
  for (let turn = 0; turn < turns; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}
