import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { createVerifyingStream } from '../../src/cache/storage-guard.ts';
import { Errors, isCacherError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { CircuitBreakers } from '../../src/upstream/circuit-breaker.ts';
import { parseRetryAfter, UpstreamGuard } from '../../src/upstream/failover.ts';
import { sha256Hex } from '../helpers/crate-pack.ts';

const log = createLogger({ level: 'silent', format: 'json' });

function breakers(clock: { ms: number }, failures = 2, coolDownMs = 1000) {
  return new CircuitBreakers({ failures, coolDownMs, log, now: () => clock.ms });
}

describe('CircuitBreakers', () => {
  test('opens after consecutive failures, fails fast, then lets one probe through', () => {
    const clock = { ms: 0 };
    const b = breakers(clock);
    b.failure(b.admit('h'), 'refused');
    assert.equal(b.state('h'), 'closed');
    b.failure(b.admit('h'), 'refused');
    assert.equal(b.state('h'), 'open');
    assert.throws(
      () => b.admit('h'),
      (err: unknown) => {
        assert.ok(isCacherError(err, 'CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN'));
        assert.equal(err.retryAfter, 1);
        return true;
      },
    );
    assert.deepEqual(b.admit('other'), { host: 'other', probe: false });
    clock.ms = 1000;
    const probe = b.admit('h');
    assert.equal(probe.probe, true);
    assert.throws(() => b.admit('h'), /not asking it again/, 'one probe at a time');
    b.success(probe);
    assert.equal(b.state('h'), 'closed');
    assert.deepEqual(b.snapshot(), []);
  });

  test('a failed probe opens the circuit for another cool-down', () => {
    const clock = { ms: 0 };
    const b = breakers(clock, 1);
    b.failure(b.admit('h'), 'timeout');
    clock.ms = 1000;
    b.failure(b.admit('h'), 'timeout');
    assert.equal(b.state('h'), 'open');
    clock.ms = 1999;
    assert.throws(() => b.admit('h'));
    clock.ms = 2000;
    assert.equal(b.admit('h').probe, true);
  });

  test('a success between failures resets the count', () => {
    const b = breakers({ ms: 0 });
    b.failure(b.admit('h'), 'x');
    b.success(b.admit('h'));
    b.failure(b.admit('h'), 'x');
    assert.equal(b.state('h'), 'closed');
  });
});

describe('UpstreamGuard', () => {
  function guard(attempts = 3) {
    const waits: number[] = [];
    const g = new UpstreamGuard({
      policy: { attempts, retryDelayMs: 100, maxRetryAfterMs: 5000 },
      breakers: breakers({ ms: 0 }, 100),
      log,
      sleep: async (ms) => {
        waits.push(ms);
      },
      // The middle of the ±50 % jitter: waits are exactly the exponential backoff.
      random: () => 0.5,
    });
    return { g, waits };
  }
  const unreachable = () => Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE('refused');

  test('tries each candidate in a round, then backs off and retries', async () => {
    const { g, waits } = guard();
    const tried: string[] = [];
    await assert.rejects(
      g.run(['http://a/x', 'http://b/x'], async (url) => {
        tried.push(url);
        throw unreachable();
      }),
      /refused/,
    );
    assert.deepEqual(tried, [
      'http://a/x',
      'http://b/x',
      'http://a/x',
      'http://b/x',
      'http://a/x',
      'http://b/x',
    ]);
    assert.deepEqual(waits, [100, 200], '100 ms before the second round, doubling');
  });

  test('moves on from a bad checksum without retrying that source', async () => {
    const { g } = guard();
    const tried: string[] = [];
    const result = await g.run(['http://a/x', 'http://b/x'], async (url) => {
      tried.push(url);
      if (url.startsWith('http://a')) throw Errors.CARGO_CACHER_CHECKSUM_MISMATCH('bad');
      return 'ok';
    });
    assert.equal(result, 'ok');
    assert.deepEqual(tried, ['http://a/x', 'http://b/x']);
  });

  test('waits for a short Retry-After, passes a long one on', async () => {
    const { g, waits } = guard(2);
    const limited = (seconds: number) =>
      Errors.CARGO_CACHER_UPSTREAM_STATUS('429', { upstreamStatus: 429, retryAfter: seconds });
    let calls = 0;
    assert.equal(
      await g.run(['http://a/x'], async () => (calls++ === 0 ? Promise.reject(limited(2)) : 'ok')),
      'ok',
    );
    assert.equal(waits[0], 2000);
    await assert.rejects(
      g.run(['http://a/x'], async () => Promise.reject(limited(60))),
      (err: unknown) => {
        assert.equal((err as { retryAfter: number }).retryAfter, 60);
        return true;
      },
    );
    assert.equal(waits.length, 1, 'no wait for a Retry-After over the cap');
  });

  test('a 404-like final error stops at once', async () => {
    const { g } = guard();
    let calls = 0;
    await assert.rejects(
      g.run(['http://a/x', 'http://b/x'], async () => {
        calls++;
        throw Errors.CARGO_CACHER_NOT_FOUND('gone');
      }),
      /gone/,
    );
    assert.equal(calls, 1);
  });

  test('a 408 is retried on the same source, like a 5xx (the policy table: retry-policy.test.ts)', async () => {
    const { g, waits } = guard(2);
    const tried: string[] = [];
    const timedOut = Errors.CARGO_CACHER_UPSTREAM_STATUS('408', { upstreamStatus: 408 });
    const result = await g.run(['http://a/x'], async (url) => {
      tried.push(url);
      if (tried.length === 1) throw timedOut;
      return 'ok';
    });
    assert.equal(result, 'ok');
    assert.deepEqual(tried, ['http://a/x', 'http://a/x']);
    assert.equal(waits.length, 1);
  });
});

describe('Retry-After, verified pass-through', () => {
  test('parses seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('7'), 7);
    assert.equal(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
      10,
    );
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  const body = Buffer.from('x'.repeat(100_000));
  const chunks = () =>
    Readable.from([body.subarray(0, 40_000), body.subarray(40_000, 80_000), body.subarray(80_000)]);

  test('passes a matching body through whole', async () => {
    const out: Buffer[] = [];
    await pipeline(
      chunks(),
      createVerifyingStream(sha256Hex(body), body.length),
      async (source) => {
        for await (const chunk of source) out.push(chunk as Buffer);
      },
    );
    assert.deepEqual(Buffer.concat(out), body);
  });

  test('holds the last chunk back when the checksum does not match', async () => {
    const out: Buffer[] = [];
    await assert.rejects(
      pipeline(chunks(), createVerifyingStream('0'.repeat(64), body.length), async (source) => {
        for await (const chunk of source) out.push(chunk as Buffer);
      }),
      /does not match/,
    );
    assert.equal(Buffer.concat(out).length, 80_000);
  });
});
