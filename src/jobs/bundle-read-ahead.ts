/**
 * @module
 * Reading a little ahead: bundles are many small files, and reading them one at a time left the
 * disk waiting on each round trip. The results still come out in order.
 */

/**
 * `fn` of each item, in order, with up to `ahead` of them running at once. A failure is thrown
 * when its turn comes; results not asked for are dropped.
 */
export async function* mapAhead<T, R>(
  items: Iterable<T>,
  ahead: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const started: Promise<R>[] = [];
  const source = items[Symbol.iterator]();
  const startNext = () => {
    const next = source.next();
    if (next.done) return;
    const running = fn(next.value);
    // Awaited in its turn; until then a rejection must not count as unhandled.
    running.catch(() => {});
    started.push(running);
  };
  for (let i = 0; i < ahead; i++) startNext();
  for (let running = started.shift(); running !== undefined; running = started.shift()) {
    startNext();
    yield await running;
  }
}
