/**
 * @module
 * Retries and failover for idempotent upstream GETs. A request is tried on each equivalent
 * upstream in turn (`-s a,b`, `-u a,b`); a round where all failed transiently is retried after
 * a backoff (honouring a short `Retry-After`), up to `attempts` rounds, or one round inside a
 * job attempt, whose own loop retries. What a failure means and how long to back off come from
 * the one retry policy (retry-policy.ts). Every try goes through the host's
 * {@link CircuitBreakers circuit breaker}, so hosts known to be down are skipped without a
 * network round trip.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamResilience } from '../config.ts';
import { type CacherError, Errors, isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { type Admission, type CircuitBreakers, hostOf } from './circuit-breaker.ts';
import {
  backoffMs,
  classifyFailure,
  countsAgainstHost,
  type RetryDecision,
  requestRounds,
} from './retry-policy.ts';

/** What {@link UpstreamGuard} needs. */
export interface UpstreamGuardOptions {
  policy: Pick<UpstreamResilience, 'attempts' | 'retryDelayMs' | 'maxRetryAfterMs'>;
  breakers: CircuitBreakers;
  /**
   * What these requests fetch (`index`, `crate`): circuits are kept per scope and host, so an
   * index outage on a registry that serves both from one host does not stop its downloads.
   */
  scope?: string;
  log: AppLogger;
  /** Waits between rounds; tests replace it. */
  sleep?: (ms: number) => Promise<unknown>;
  /** Draws the backoff's jitter; tests pass a fixed one. */
  random?: () => number;
}

/** Runs upstream requests with retries, failover and circuit breakers. */
export class UpstreamGuard {
  readonly #options: UpstreamGuardOptions;
  readonly #sleep: (ms: number) => Promise<unknown>;

  constructor(options: UpstreamGuardOptions) {
    this.#options = options;
    this.#sleep = options.sleep ?? ((ms) => sleep(ms));
  }

  /**
   * Runs `task` against the candidate URLs (equivalent upstreams, in order of preference) until
   * one succeeds; `options.attempts` lowers the rounds (1 when a stale copy can be served
   * instead: cargo should not wait for retries then), and so does a job attempt
   * ({@link requestRounds}). Rethrows the most telling failure: an upstream's own error over a
   * circuit-open one, so cargo prints why the upstream failed.
   */
  async run<T>(
    candidates: readonly string[],
    task: (url: string) => Promise<T>,
    options: { attempts?: number } = {},
  ): Promise<T> {
    const { log } = this.#options;
    const policy = { ...this.#options.policy, ...options };
    const rounds = requestRounds(policy.attempts);
    let remaining = [...candidates];
    let failure: CacherError | undefined;
    let fastFailure: CacherError | undefined;
    for (let round = 0; round < rounds && remaining.length > 0; round++) {
      let waitMs = this.#backoff(round);
      let tried = false;
      for (const url of [...remaining]) {
        const admission = this.#admit(url);
        if (isCacherError(admission)) {
          fastFailure ??= admission;
          continue;
        }
        tried = true;
        try {
          const result = await task(url);
          this.#options.breakers.success(admission);
          return result;
        } catch (err) {
          const decision = this.#judge(admission, err);
          if (decision.kind === 'stop') throw err;
          failure = err as CacherError;
          const retryAfterMs = decision.kind === 'retry-after' ? decision.seconds * 1000 : 0;
          if (decision.kind === 'next-source' || retryAfterMs > policy.maxRetryAfterMs) {
            // A long Retry-After is not waited for here: it is passed on to cargo.
            remaining = remaining.filter((candidate) => candidate !== url);
          } else {
            waitMs = Math.max(waitMs, retryAfterMs);
          }
          log.info({ url, code: failure.code }, `upstream try failed: ${failure.message}`);
        }
      }
      if (!tried || round + 1 >= rounds || remaining.length === 0) break;
      await this.#sleep(waitMs);
    }
    throw failure ?? fastFailure ?? Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE('no upstream to ask');
  }

  /** Upstream hosts that failed lately, with their circuit state (for /health). */
  circuits(): ReturnType<CircuitBreakers['snapshot']> {
    return this.#options.breakers.snapshot();
  }

  #admit(url: string): Admission | CacherError {
    try {
      const { scope } = this.#options;
      return this.#options.breakers.admit(scope ? `${scope} ${hostOf(url)}` : hostOf(url));
    } catch (err) {
      return err as CacherError;
    }
  }

  #judge(admission: Admission, err: unknown): RetryDecision {
    const decision = classifyFailure(err);
    if (countsAgainstHost(decision)) {
      this.#options.breakers.failure(admission, (err as Error).message);
    } else {
      this.#options.breakers.success(admission);
    }
    return decision;
  }

  /** The wait before round `round + 1`: capped by the longest `Retry-After` waited for. */
  #backoff(round: number): number {
    const { retryDelayMs, maxRetryAfterMs } = this.#options.policy;
    const backoff = { baseMs: retryDelayMs, capMs: maxRetryAfterMs, jitter: true };
    return backoffMs(round, backoff, this.#options.random);
  }
}

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP date) into seconds, or
 * `undefined` when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, Math.ceil((date - now) / 1000)) : undefined;
}
