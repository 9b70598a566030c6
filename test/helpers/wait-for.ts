/**
 * @module
 * The one polling wait of the tests: for a state the code reaches on its own (a git clone
 * finished, a job done, a connection counted). It is bounded and says what it waited for.
 * Time the code measures (TTLs, cool-downs) is moved with an injected clock instead.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Polls `check` every `intervalMs` until it holds; fails with `what` once `timeoutMs` has
 * passed (after one last check, so a slow machine's final poll still counts).
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      if (await check()) return;
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await delay(intervalMs);
  }
}
