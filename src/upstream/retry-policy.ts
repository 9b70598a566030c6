/**
 * @module
 * The one retry policy for everything cargo-cacher asks upstream: client requests (through
 * `UpstreamGuard`, failover.ts), background jobs (prefetch, the full and the filtered mirror) and the
 * git mirror's first clone. It says what a failure means ({@link classifyFailure}), how long to
 * back off ({@link backoffMs}), and how many attempts there are.
 *
 * Retries do not nest. A job runs each of its attempts through {@link retryJob}, and inside a
 * job attempt the request layer makes one round over the equivalent upstreams instead of its
 * own retry rounds ({@link requestRounds}); the job's loop does the retrying, slower and within
 * its own budget. So each upstream file a job package needs (its index file, its crate) is asked
 * of each upstream at most {@link JOB_RETRY}`.attempts` times.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCacherError } from '../errors.ts';

/** What a failure means for the next attempt. */
export type RetryDecision =
  /** Upstream is in trouble (network, timeout, 408, 429, 5xx): back off and try again. */
  | { kind: 'retry' }
  /**
   * Not now, ask again after `seconds`: upstream's `Retry-After` on a 429/503, or, `local`,
   * a wait cargo-cacher imposes itself (an open circuit's cool-down, its own rate limit toward
   * an API, a git index still being cloned), which says nothing about the upstream host.
   */
  | { kind: 'retry-after'; seconds: number; local: boolean }
  /** This source answered, but not usefully (403, 404, bad checksum, malformed): ask another. */
  | { kind: 'next-source' }
  /** Not upstream's fault (storage, the policy, a bug) or an answer: retrying cannot help. */
  | { kind: 'stop' };

const RETRY: RetryDecision = { kind: 'retry' };
const NEXT_SOURCE: RetryDecision = { kind: 'next-source' };
const STOP: RetryDecision = { kind: 'stop' };

/** How long the git index usually needs before a retry finds it cloned, when not told. */
const GIT_NOT_READY_SECONDS = 10;

/** Classifies a failure from cargo-cacher's error codes and upstream's HTTP status. */
export function classifyFailure(err: unknown): RetryDecision {
  if (!isCacherError(err)) return STOP;
  switch (err.code) {
    case 'CARGO_CACHER_UPSTREAM_UNREACHABLE':
    case 'CARGO_CACHER_UPSTREAM_TIMEOUT':
      // Their `retryAfter` is the hint sent on to cargo, not upstream's: back off as usual.
      return RETRY;
    case 'CARGO_CACHER_UPSTREAM_STATUS':
      return classifyStatus(err.upstreamStatus, err.retryAfter);
    case 'CARGO_CACHER_UPSTREAM_INVALID':
    case 'CARGO_CACHER_CHECKSUM_MISMATCH':
      return NEXT_SOURCE;
    case 'CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN':
    case 'CARGO_CACHER_RATE_LIMITED':
      return { kind: 'retry-after', seconds: err.retryAfter ?? 1, local: true };
    case 'CARGO_CACHER_GIT_NOT_READY':
      return {
        kind: 'retry-after',
        seconds: err.retryAfter ?? GIT_NOT_READY_SECONDS,
        local: true,
      };
    default:
      return STOP;
  }
}

/**
 * An upstream status: 408 (the server gave up waiting for us), 429 and 5xx are passing trouble,
 * any other 4xx is that source's answer. A missing status is a 502: something failed between.
 */
function classifyStatus(status = 502, retryAfter: number | undefined): RetryDecision {
  if ((status === 429 || status === 503) && retryAfter !== undefined) {
    return { kind: 'retry-after', seconds: retryAfter, local: false };
  }
  if (status >= 500 || status === 408 || status === 429) return RETRY;
  return NEXT_SOURCE;
}

/** True when the failure counts against the host's circuit breaker (it is in trouble). */
export function countsAgainstHost(decision: RetryDecision): boolean {
  return decision.kind === 'retry' || (decision.kind === 'retry-after' && !decision.local);
}

/** Exponential backoff: `baseMs` before the first retry, doubling, never over `capMs`. */
export interface Backoff {
  baseMs: number;
  capMs: number;
  /**
   * Spread each wait over ±50 %, so many clients or workers that failed together do not retry
   * in step against an upstream that is just recovering.
   */
  jitter: boolean;
}

/**
 * The wait before retry number `retry` (0 before the first retry). `random` (in [0, 1), as
 * `Math.random`) draws the jitter; tests pass a fixed one.
 */
export function backoffMs(retry: number, backoff: Backoff, random: () => number = Math.random) {
  const exponential = backoff.baseMs * 2 ** Math.max(retry, 0);
  const spread = backoff.jitter ? 0.5 + random() : 1;
  return Math.min(Math.round(exponential * spread), backoff.capMs);
}

/** How a background job retries one upstream file of a package. */
export interface JobRetry {
  /** Attempts in all; each is one round over the equivalent upstreams. */
  attempts: number;
  backoff: Backoff;
  /** A `Retry-After` (or cool-down) up to this long is waited for; a longer one fails the package. */
  maxRetryAfterMs: number;
  /** Waits between attempts; tests replace it so nothing waits for real. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
  /** Draws the jitter; tests pass a fixed one. */
  random?: () => number;
}

/**
 * Jobs are in no hurry, and a client may be waiting on the same upstream: four attempts, 1 s,
 * 2 s and 4 s apart (±50 %), so a blip of several seconds is ridden out; an open circuit's
 * cool-down (30 s by default) or a git clone under way is waited for. One upstream is asked at
 * most 4 times for a package's crate (and 4 for its index file, for a prefetch).
 */
export const JOB_RETRY: Readonly<JobRetry> = {
  attempts: 4,
  backoff: { baseMs: 1000, capMs: 30_000, jitter: true },
  maxRetryAfterMs: 60_000,
};

/**
 * How long a job waits before attempt `attempt + 1` after `decision`, or `undefined` when it
 * gives up: attempts spent, a failure retrying cannot mend, or a `Retry-After` over the limit.
 */
export function jobRetryDelayMs(
  decision: RetryDecision,
  attempt: number,
  retry: Readonly<JobRetry>,
): number | undefined {
  if (attempt >= retry.attempts) return undefined;
  if (decision.kind !== 'retry' && decision.kind !== 'retry-after') return undefined;
  const backoff = backoffMs(attempt - 1, retry.backoff, retry.random);
  if (decision.kind === 'retry') return backoff;
  const retryAfterMs = decision.seconds * 1000;
  return retryAfterMs > retry.maxRetryAfterMs ? undefined : Math.max(backoff, retryAfterMs);
}

/** Set while a job attempt runs: the request layer then leaves retrying to the job. */
const jobAttempt = new AsyncLocalStorage<true>();

/**
 * The retry rounds the request layer makes: `configured` for a client request, 1 inside a job
 * attempt (whose loop retries itself). The flag travels with the async context, so the caches
 * between a job and the request layer need not carry it.
 */
export function requestRounds(configured: number): number {
  return jobAttempt.getStore() === true ? 1 : configured;
}

/**
 * Runs `task` for a job, retrying per `retry` and {@link classifyFailure}; rethrows the last
 * failure. Each attempt is one request round (see {@link requestRounds}), so the attempts here
 * are all the attempts there are.
 */
export async function retryJob<T>(
  task: () => Promise<T>,
  retry: Readonly<JobRetry> = JOB_RETRY,
  signal?: AbortSignal,
): Promise<T> {
  const wait = retry.sleep ?? ((ms, s) => sleep(ms, undefined, s ? { signal: s } : {}));
  for (let attempt = 1; ; attempt++) {
    try {
      return await jobAttempt.run(true, task);
    } catch (err) {
      const delay = jobRetryDelayMs(classifyFailure(err), attempt, retry);
      if (delay === undefined || signal?.aborted) throw err;
      await wait(delay, signal);
    }
  }
}
