/**
 * @module
 * Single-flight: concurrent callers asking for the same key share one running task, so N
 * requests for the same missing crate cause exactly one upstream fetch.
 */

/** Runs at most one task per key at a time; later callers get the running task's promise. */
export class SingleFlight<T> {
  readonly #running = new Map<string, Promise<T>>();

  /** Runs `task` unless one is already running for `key`, and returns its result. */
  run(key: string, task: () => Promise<T>): Promise<T> {
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    const promise = task().finally(() => this.#running.delete(key));
    this.#running.set(key, promise);
    return promise;
  }

  /** How many distinct tasks are running now (an in-flight gauge for metrics). */
  get size(): number {
    return this.#running.size;
  }
}
