/**
 * @module
 * Retries and failover for idempotent upstream GETs. A request is tried on each equivalent
 * upstream in turn (`-s a,b`, `-u a,b`); a round where all failed transiently is retried after
 * a backoff (honouring a short `Retry-After`), up to `attempts` rounds. Every try goes through
 * the host's {@link CircuitBreakers circuit breaker}, so hosts known to be down are skipped
 * without a network round trip.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamResilience } from '../config.ts';
import { type CacherError, Errors, isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { type Admission, type CircuitBreakers, hostOf } from './circuit-breaker.ts';

/** What to do after a failed try. */
type Verdict =
  /** The host is in trouble (network, timeout, 5xx, 429): count it, retry later. */
  | 'transient'
  /** The host answered, but not usefully (bad checksum, 403, malformed): try the next one. */
  | 'next'
  /** Not the upstream's fault (our disk, a 404 answer): stop and report it. */
  | 'final';

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
   * instead: cargo should not wait for retries then). Rethrows the most telling failure: an upstream's own error over a
   * circuit-open one, so cargo prints why the upstream failed.
   */
  async run<T>(
    candidates: readonly string[],
    task: (url: string) => Promise<T>,
    options: { attempts?: number } = {},
  ): Promise<T> {
    const { log } = this.#options;
    const policy = { ...this.#options.policy, ...options };
    let remaining = [...candidates];
    let failure: CacherError | undefined;
    let fastFailure: CacherError | undefined;
    for (let round = 0; round < policy.attempts && remaining.length > 0; round++) {
      let waitMs = backoff(policy.retryDelayMs, round);
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
          const verdict = this.#judge(admission, err);
          if (verdict === 'final') throw err;
          failure = err as CacherError;
          const retryAfterMs = retryAfterOf(failure);
          if (verdict === 'next' || retryAfterMs > policy.maxRetryAfterMs) {
            remaining = remaining.filter((candidate) => candidate !== url);
          } else {
            waitMs = Math.max(waitMs, retryAfterMs);
          }
          log.info({ url, code: failure.code }, `upstream try failed: ${failure.message}`);
        }
      }
      if (!tried || round + 1 >= policy.attempts || remaining.length === 0) break;
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

  #judge(admission: Admission, err: unknown): Verdict {
    const verdict = verdictOf(err);
    if (verdict === 'transient') {
      this.#options.breakers.failure(admission, (err as Error).message);
    } else {
      this.#options.breakers.success(admission);
    }
    return verdict;
  }
}

/** How a failure is handled: see {@link Verdict}. */
export function verdictOf(err: unknown): Verdict {
  if (!isCacherError(err)) return 'final';
  switch (err.code) {
    case 'CARGO_CACHER_UPSTREAM_UNREACHABLE':
    case 'CARGO_CACHER_UPSTREAM_TIMEOUT':
      return 'transient';
    case 'CARGO_CACHER_UPSTREAM_STATUS': {
      const status = err.upstreamStatus ?? 502;
      return status >= 500 || status === 429 ? 'transient' : 'next';
    }
    case 'CARGO_CACHER_UPSTREAM_INVALID':
    case 'CARGO_CACHER_CHECKSUM_MISMATCH':
      return 'next';
    default:
      return 'final';
  }
}

/** Exponential backoff with ±50 % jitter, so retries of many clients do not line up. */
function backoff(baseMs: number, round: number): number {
  return Math.round(baseMs * 2 ** round * (0.5 + Math.random()));
}

/** The `Retry-After` of a 429/503, in ms; 0 when there was none. */
function retryAfterOf(err: CacherError): number {
  const status = err.upstreamStatus;
  if ((status !== 429 && status !== 503) || err.retryAfter === undefined) return 0;
  return err.retryAfter * 1000;
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
