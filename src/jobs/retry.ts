/**
 * @module
 * Retrying transient upstream failures with exponential backoff, for background jobs (client
 * requests are not retried here: cargo retries them itself).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isCacherError } from '../errors.ts';

/** How often and how patiently to retry. */
export interface RetryPolicy {
  attempts: number;
  /** Delay before the first retry; doubled for each further one. */
  baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 1000 };

/** Upstream trouble that may pass (network, timeouts, 5xx, 429); never a 404 or a bad checksum. */
export function isTransient(err: unknown): boolean {
  if (isCacherError(err, 'CARGO_CACHER_UPSTREAM_STATUS')) {
    const status = err.upstreamStatus;
    return status === undefined || status >= 500 || status === 408 || status === 429;
  }
  return (
    isCacherError(err, 'CARGO_CACHER_UPSTREAM_UNREACHABLE') ||
    isCacherError(err, 'CARGO_CACHER_UPSTREAM_TIMEOUT') ||
    // The upstream client's circuit breaker: upstream failed lately, so wait out its cool-down.
    isCacherError(err, 'CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN') ||
    isCacherError(err, 'CARGO_CACHER_GIT_NOT_READY')
  );
}

/** The longest `Retry-After` (or circuit cool-down) a job waits for before its next attempt. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Runs `task`, retrying transient failures per `policy`, each time after the backoff or the
 * error's `retryAfter`, whichever is longer; rethrows the last error.
 */
export async function withRetry<T>(
  task: () => Promise<T>,
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err) || signal?.aborted) throw err;
      const backoff = policy.baseDelayMs * 2 ** (attempt - 1);
      await sleep(Math.max(backoff, retryAfterMs(err)), undefined, signal ? { signal } : {});
    }
  }
}

function retryAfterMs(err: unknown): number {
  const seconds = isCacherError(err) ? (err.retryAfter ?? 0) : 0;
  return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
}
