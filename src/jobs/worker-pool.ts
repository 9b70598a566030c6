/**
 * @module
 * A bounded worker pool: at most `concurrency` tasks run at once, fed lazily from an iterable
 * (a full mirror enumerates millions of versions without holding them all).
 */

/**
 * Runs `worker` on every item with at most `concurrency` running at once. A worker that throws
 * does not stop the others; errors are the worker's to record. Stops taking new items when
 * `signal` aborts, and then closes the iterator.
 */
export async function runPool<T>(
  items: Iterable<T> | AsyncIterable<T>,
  concurrency: number,
  worker: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const iterator = toAsyncIterator(items);
  let exhausted = false;
  const next = async (): Promise<IteratorResult<T>> => {
    if (exhausted || signal?.aborted) return { done: true, value: undefined };
    const result = await iterator.next();
    if (result.done) exhausted = true;
    return result;
  };
  const lane = async (): Promise<void> => {
    for (let item = await next(); !item.done; item = await next()) {
      try {
        await worker(item.value);
      } catch {
        // The worker records its own failures; one bad item never stops the pool.
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  // Stopped early: let the source clean up (the mirror's `git cat-file` would block forever on
  // a full pipe and keep the process alive).
  if (!exhausted) await iterator.return?.();
}

function toAsyncIterator<T>(items: Iterable<T> | AsyncIterable<T>): AsyncIterator<T> {
  if (Symbol.asyncIterator in items) return items[Symbol.asyncIterator]();
  const sync = items[Symbol.iterator]();
  return { next: async () => sync.next() };
}
