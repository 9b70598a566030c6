import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { cloneBackoffMs } from '../../src/git/git-mirror.ts';
import { createLogger } from '../../src/logger.ts';
import { CircuitBreakers } from '../../src/upstream/circuit-breaker.ts';
import { UpstreamGuard } from '../../src/upstream/failover.ts';
import {
  backoffMs,
  classifyFailure,
  countsAgainstHost,
  JOB_RETRY,
  type JobRetry,
  jobRetryDelayMs,
  type RetryDecision,
  requestRounds,
  retryJob,
} from '../../src/upstream/retry-policy.ts';

const log = createLogger({ level: 'silent', format: 'json' });

const status = (upstreamStatus: number | undefined, retryAfter?: number) =>
  Errors.CARGO_CACHER_UPSTREAM_STATUS(`upstream answered ${upstreamStatus}`, {
    ...(upstreamStatus !== undefined && { upstreamStatus }),
    ...(retryAfter !== undefined && { retryAfter }),
  });

const RETRY: RetryDecision = { kind: 'retry' };
const NEXT: RetryDecision = { kind: 'next-source' };
const STOP: RetryDecision = { kind: 'stop' };
/** Upstream's own `Retry-After`. */
const after = (seconds: number): RetryDecision => ({ kind: 'retry-after', seconds, local: false });
/** A wait cargo-cacher imposes itself. */
const wait = (seconds: number): RetryDecision => ({ kind: 'retry-after', seconds, local: true });

/** Every kind of failure cargo-cacher meets, and what the one policy makes of it. */
const CLASSIFICATION: [string, unknown, RetryDecision][] = [
  ['connection refused', Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE('refused'), RETRY],
  [
    'unreachable, with the Retry-After meant for cargo',
    Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE('refused', { retryAfter: 5 }),
    RETRY,
  ],
  ['connect, header or body timeout', Errors.CARGO_CACHER_UPSTREAM_TIMEOUT('slow'), RETRY],
  ['500', status(500), RETRY],
  ['502', status(502), RETRY],
  ['503 without Retry-After', status(503), RETRY],
  ['503 with Retry-After', status(503, 7), after(7)],
  ['504', status(504), RETRY],
  ['408 request timeout', status(408), RETRY],
  ['429 without Retry-After', status(429), RETRY],
  ['429 with Retry-After', status(429, 120), after(120)],
  ['500 with a Retry-After (only 429 and 503 give one)', status(500, 9), RETRY],
  ['an unexpected answer with no status (a 502)', status(undefined), RETRY],
  ['400', status(400), NEXT],
  ['401', status(401), NEXT],
  ['403', status(403), NEXT],
  ['404 from a crate source', status(404), NEXT],
  ['410', status(410), NEXT],
  ['malformed or truncated', Errors.CARGO_CACHER_UPSTREAM_INVALID('bad json'), NEXT],
  ['checksum mismatch', Errors.CARGO_CACHER_CHECKSUM_MISMATCH('bad'), NEXT],
  ['open circuit', Errors.CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN('down', { retryAfter: 25 }), wait(25)],
  ['git index still cloning', Errors.CARGO_CACHER_GIT_NOT_READY('cloning'), wait(10)],
  [
    'git index still cloning, with its own hint',
    Errors.CARGO_CACHER_GIT_NOT_READY('cloning', { retryAfter: 3 }),
    wait(3),
  ],
  [
    "cargo-cacher's own rate limit toward the crates.io API",
    Errors.CARGO_CACHER_RATE_LIMITED('queue full', { retryAfter: 2 }),
    wait(2),
  ],
  ['not found (an answer)', Errors.CARGO_CACHER_NOT_FOUND('gone'), STOP],
  ['not cached, offline', Errors.CARGO_CACHER_NOT_CACHED_OFFLINE('offline'), STOP],
  ['storage', Errors.CARGO_CACHER_STORAGE('disk full'), STOP],
  ['supply-chain policy', Errors.CARGO_CACHER_POLICY('young'), STOP],
  ['bad request', Errors.CARGO_CACHER_BAD_REQUEST('bad name'), STOP],
  ['git disabled', Errors.CARGO_CACHER_GIT_DISABLED('off'), STOP],
  ['forbidden', Errors.CARGO_CACHER_FORBIDDEN('push'), STOP],
  ['unauthorized', Errors.CARGO_CACHER_UNAUTHORIZED('token'), STOP],
  ['body too large', Errors.CARGO_CACHER_BODY_TOO_LARGE('lock file'), STOP],
  ['invalid config', Errors.CARGO_CACHER_INVALID_CONFIG('flag'), STOP],
  ['a registry write (publish, yank)', Errors.CARGO_CACHER_NOT_A_REGISTRY('cache'), STOP],
  ['a plain Error (a bug)', new Error('plain'), STOP],
  ['an abort', new DOMException('aborted', 'AbortError'), STOP],
  ['not an Error', 'string', STOP],
];

function describeDecision(decision: RetryDecision): string {
  if (decision.kind !== 'retry-after') return decision.kind;
  return `${decision.local ? 'wait' : 'retry after'} ${decision.seconds}s`;
}

describe('retry policy: classification', () => {
  for (const [what, err, decision] of CLASSIFICATION) {
    test(`${what} → ${describeDecision(decision)}`, () => {
      assert.deepEqual(classifyFailure(err), decision);
    });
  }

  test('the table names every error code', () => {
    // A new code must be placed here (and, if it is upstream trouble, in classifyFailure).
    const named = new Set(CLASSIFICATION.map(([, err]) => (err as { code?: string }).code));
    assert.deepEqual(
      Object.keys(Errors).filter((code) => !named.has(code)),
      [],
    );
  });

  test('trouble counts against the host; answers and refusals do not', () => {
    assert.deepEqual([RETRY, after(3), wait(3), NEXT, STOP].map(countsAgainstHost), [
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});

describe('retry policy: backoff', () => {
  const plain = { baseMs: 1000, capMs: 5000, jitter: false };

  test('exponential from the base, capped', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10].map((retry) => backoffMs(retry, plain)),
      [1000, 2000, 4000, 5000, 5000, 5000],
    );
  });

  test('jitter spreads each wait over ±50 %, still capped', () => {
    const jittered = { ...plain, jitter: true };
    const at = (retry: number, draw: number) => backoffMs(retry, jittered, () => draw);
    assert.deepEqual([at(0, 0), at(0, 0.5), at(0, 0.999)], [500, 1000, 1499]);
    assert.deepEqual([at(1, 0), at(1, 0.999)], [1000, 2998]);
    assert.equal(at(2, 0.999), 5000, 'the cap holds after jitter');
  });

  test('requests: 200 ms, 400 ms with the defaults', () => {
    const request = { baseMs: 200, capMs: 5000, jitter: true };
    assert.deepEqual(
      [0, 1].map((round) => backoffMs(round, request, () => 0.5)),
      [200, 400],
    );
  });

  test('the git mirror first clone: 1 s, 2 s, 4 s … capped by -r and five minutes', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((failures) => cloneBackoffMs(failures, 600_000)),
      [1000, 2000, 4000, 8000],
    );
    assert.equal(cloneBackoffMs(20, 600_000), 300_000);
    assert.equal(cloneBackoffMs(5, 3000), 3000);
  });

  test('jobs: 1 s, 2 s, 4 s, then give up; a Retry-After up to 60 s is waited for', () => {
    const retry: JobRetry = { ...JOB_RETRY, random: () => 0.5 };
    assert.deepEqual(
      [1, 2, 3, 4].map((attempt) => jobRetryDelayMs(RETRY, attempt, retry)),
      [1000, 2000, 4000, undefined],
    );
    assert.equal(jobRetryDelayMs(after(10), 1, retry), 10_000);
    assert.equal(jobRetryDelayMs(after(60), 1, retry), 60_000);
    assert.equal(jobRetryDelayMs(after(0), 3, retry), 4000, 'never sooner than the backoff');
    assert.equal(jobRetryDelayMs(after(61), 1, retry), undefined, 'too long: the package fails');
    assert.equal(jobRetryDelayMs(after(10), 4, retry), undefined, 'attempts spent');
    assert.equal(jobRetryDelayMs(NEXT, 1, retry), undefined);
    assert.equal(jobRetryDelayMs(STOP, 1, retry), undefined);
  });
});

describe('retry policy: jobs do not nest retries', () => {
  function harness(options: { failures?: number; coolDownMs?: number } = {}) {
    const clock = { ms: 0 };
    const breakers = new CircuitBreakers({
      failures: options.failures ?? 100,
      coolDownMs: options.coolDownMs ?? 30_000,
      log,
      now: () => clock.ms,
    });
    const guardWaits: number[] = [];
    const guard = new UpstreamGuard({
      policy: { attempts: 3, retryDelayMs: 200, maxRetryAfterMs: 5000 },
      breakers,
      log,
      sleep: async (ms) => {
        guardWaits.push(ms);
      },
      random: () => 0.5,
    });
    const jobWaits: number[] = [];
    const retry: JobRetry = {
      ...JOB_RETRY,
      random: () => 0.5,
      // Time moves only when the job waits: nothing waits for real.
      sleep: async (ms) => {
        jobWaits.push(ms);
        clock.ms += ms;
      },
    };
    return { guard, guardWaits, jobWaits, retry, clock };
  }

  test('a client request makes its rounds; a job attempt makes one', async () => {
    assert.equal(requestRounds(3), 3);
    assert.equal(await retryJob(async () => requestRounds(3)), 1);
    assert.equal(requestRounds(3), 3, 'only inside the attempt');
  });

  test('a failing upstream is asked JOB_RETRY.attempts times per candidate, not 4 × 3', async () => {
    const { guard, guardWaits, jobWaits, retry } = harness();
    const tried: string[] = [];
    const failing = (url: string) => {
      tried.push(url);
      return Promise.reject(status(500));
    };
    await assert.rejects(
      retryJob(() => guard.run(['http://a/x', 'http://b/x'], failing), retry),
      /answered 500/,
    );
    assert.equal(JOB_RETRY.attempts, 4);
    assert.equal(tried.filter((url) => url.startsWith('http://a')).length, 4);
    assert.equal(tried.filter((url) => url.startsWith('http://b')).length, 4);
    assert.deepEqual(guardWaits, [], 'no request-level rounds inside a job attempt');
    assert.deepEqual(jobWaits, [1000, 2000, 4000]);
  });

  test('outside a job the same guard retries its 3 rounds', async () => {
    const { guard, guardWaits } = harness();
    let tries = 0;
    await assert.rejects(
      guard.run(['http://a/x'], () => {
        tries++;
        return Promise.reject(status(500));
      }),
    );
    assert.equal(tries, 3);
    assert.deepEqual(guardWaits, [200, 400]);
  });

  test('what retrying cannot mend is asked once', async () => {
    for (const err of [status(404), Errors.CARGO_CACHER_CHECKSUM_MISMATCH('bad')]) {
      const { guard, jobWaits, retry } = harness();
      let tries = 0;
      await assert.rejects(
        retryJob(
          () =>
            guard.run(['http://a/x'], () => {
              tries++;
              return Promise.reject(err);
            }),
          retry,
        ),
      );
      assert.equal(tries, 1, err.message);
      assert.deepEqual(jobWaits, []);
    }
  });

  test('an open circuit costs the job an attempt and a wait, not a request', async () => {
    const { guard, jobWaits, retry } = harness({ failures: 2, coolDownMs: 30_000 });
    let tries = 0;
    const failing = () => {
      tries++;
      return Promise.reject(Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE('refused'));
    };
    await assert.rejects(
      retryJob(() => guard.run(['http://a/x'], failing), retry),
      /refused/,
    );
    // At 0 s refused; at 1 s refused, the circuit opens until 31 s; at 3 s open, nothing sent,
    // the job waits the 28 s of cool-down left; at 31 s the probe, refused.
    assert.equal(tries, 3);
    assert.deepEqual(jobWaits, [1000, 2000, 28_000]);
  });

  test('a long Retry-After fails the package at once; a short one is waited for', async () => {
    const { guard, jobWaits, retry } = harness();
    let tries = 0;
    const limited = (seconds: number) => () => {
      tries++;
      return Promise.reject(status(429, seconds));
    };
    await assert.rejects(
      retryJob(() => guard.run(['http://a/x'], limited(600)), retry),
      /429/,
    );
    assert.equal(tries, 1);
    tries = 0;
    await assert.rejects(
      retryJob(() => guard.run(['http://a/x'], limited(20)), retry),
      /429/,
    );
    assert.equal(tries, 4);
    assert.deepEqual(jobWaits, [20_000, 20_000, 20_000]);
  });

  test('a git index still cloning is waited for', async () => {
    const { jobWaits, retry } = harness();
    let calls = 0;
    const result = await retryJob(async () => {
      if (++calls < 3) throw Errors.CARGO_CACHER_GIT_NOT_READY('cloning', { retryAfter: 10 });
      return 'read';
    }, retry);
    assert.equal(result, 'read');
    assert.deepEqual(jobWaits, [10_000, 10_000]);
  });

  test('a stopped job does not wait for its next attempt', async () => {
    const { retry, jobWaits } = harness();
    const stop = new AbortController();
    stop.abort();
    let calls = 0;
    await assert.rejects(
      retryJob(
        () => {
          calls++;
          return Promise.reject(status(500));
        },
        retry,
        stop.signal,
      ),
      /500/,
    );
    assert.equal(calls, 1);
    assert.deepEqual(jobWaits, []);
  });
});
