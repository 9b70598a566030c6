import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCacherError } from '../../src/errors.ts';
import { RateLimiter } from '../../src/upstream/rate-limit.ts';
import { ManualClock, settle } from '../helpers/manual-clock.ts';

function limiter(clock: ManualClock, maxQueue = 32) {
  return new RateLimiter({
    intervalMs: 1000,
    maxQueue,
    target: 'the test API',
    now: clock.now,
    sleep: clock.sleep,
  });
}

/** Takes `count` turns at once and records, in order, which ones have been let through. */
function burst(rate: RateLimiter, count: number) {
  const started: number[] = [];
  const refused: unknown[] = [];
  for (let i = 0; i < count; i++) {
    rate.take().then(
      () => started.push(i),
      (err: unknown) => refused.push(err),
    );
  }
  return { started, refused };
}

describe('RateLimiter', () => {
  test('lets the first request go at once', async () => {
    const clock = new ManualClock();
    const { started } = burst(limiter(clock), 1);
    await settle();
    assert.deepEqual(started, [0]);
  });

  test('lets a burst through one per second, in arrival order', async () => {
    const clock = new ManualClock();
    const rate = limiter(clock);
    const { started } = burst(rate, 4);
    await settle();
    assert.deepEqual(started, [0]);
    assert.equal(rate.waiting, 3);
    await clock.advance(999);
    assert.deepEqual(started, [0], 'not before a whole second');
    await clock.advance(1);
    assert.deepEqual(started, [0, 1]);
    await clock.advance(1000);
    await clock.advance(1000);
    assert.deepEqual(started, [0, 1, 2, 3]);
    assert.equal(rate.waiting, 0);
  });

  test('a clock that jumps lets only one waiter go per interval', async () => {
    const clock = new ManualClock();
    const { started } = burst(limiter(clock), 3);
    await settle();
    await clock.advance(10_000);
    assert.deepEqual(started, [0, 1], 'the interval is measured between actual starts');
    await clock.advance(1000);
    assert.deepEqual(started, [0, 1, 2]);
  });

  test('refuses past the queue bound with 429 and Retry-After', async () => {
    const clock = new ManualClock();
    const rate = limiter(clock, 2);
    const { started, refused } = burst(rate, 5);
    await settle();
    assert.deepEqual(started, [0]);
    assert.equal(refused.length, 2, 'one running, two waiting, two refused');
    const err = refused[0];
    assert.ok(isCacherError(err, 'CARGO_CACHER_RATE_LIMITED'));
    assert.equal(err.statusCode, 429);
    assert.equal(err.retryAfter, 1);
    assert.match(err.message, /2 requests are already waiting for the test API/);
  });

  test('takes requests again once the queue has room', async () => {
    const clock = new ManualClock();
    const rate = limiter(clock, 1);
    const first = burst(rate, 3);
    await settle();
    assert.equal(first.refused.length, 1);
    await clock.advance(1000);
    const second = burst(rate, 1);
    await settle();
    assert.deepEqual(second.refused, []);
    await clock.advance(1000);
    assert.deepEqual(second.started, [0]);
  });

  test('a request after a quiet interval goes at once, without sleeping', async () => {
    const clock = new ManualClock();
    const rate = limiter(clock);
    burst(rate, 1);
    await clock.advance(1000);
    const later = burst(rate, 1);
    await settle();
    assert.deepEqual(later.started, [0]);
    assert.equal(clock.sleeping, 0);
  });
});
