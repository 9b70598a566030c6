/**
 * @module
 * A request rate toward one upstream, with a bounded queue. crates.io's data-access policy
 * (https://crates.io/data-access) allows its API "a maximum of 1 request per second"; the
 * sparse index and static.crates.io have no such limit, so only the registry API goes through
 * this. Requests over the rate wait their turn in arrival order; past the queue's bound they
 * are refused at once with `CARGO_CACHER_RATE_LIMITED` (429 and `Retry-After`, which cargo
 * honours), rather than piling up behind a minute of waiting.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Errors } from '../errors.ts';

/** How a {@link RateLimiter} is set up. */
export interface RateLimitOptions {
  /** Least time between the starts of two requests. */
  intervalMs: number;
  /** Requests that may wait for their turn; one more is refused. */
  maxQueue: number;
  /** What is limited, for the refusal's message (`the crates.io API`). */
  target?: string;
  /** The clock (default `Date.now`); tests move it by hand. */
  now?: () => number;
  /** Waits (default a timer); tests resolve it when they move their clock. */
  sleep?: (ms: number) => Promise<unknown>;
}

/** crates.io's API: "a maximum of 1 request per second". */
export const CRATES_IO_API_INTERVAL_MS = 1000;
/** Requests waiting for the API at most: half a minute of crates.io's rate. */
export const CRATES_IO_API_QUEUE = 32;

/**
 * At most one request start per `intervalMs`, measured between actual starts (a late timer
 * never lets two through together), waiters served first come, first served.
 *
 * @example
 * const limiter = new RateLimiter({ intervalMs: 1000, maxQueue: 32 });
 * await limiter.take(); // then send the request
 */
export class RateLimiter {
  readonly #intervalMs: number;
  readonly #maxQueue: number;
  readonly #target: string;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;
  readonly #queue: (() => void)[] = [];
  #lastStart = Number.NEGATIVE_INFINITY;
  #pumping = false;

  constructor(options: RateLimitOptions) {
    this.#intervalMs = options.intervalMs;
    this.#maxQueue = options.maxQueue;
    this.#target = options.target ?? 'upstream';
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
  }

  /** Requests waiting for their turn now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Resolves when the caller may send its request. Rejects at once with
   * `CARGO_CACHER_RATE_LIMITED` when `maxQueue` requests are already waiting.
   */
  take(): Promise<void> {
    if (this.#queue.length === 0 && this.#now() - this.#lastStart >= this.#intervalMs) {
      this.#lastStart = this.#now();
      return Promise.resolve();
    }
    if (this.#queue.length >= this.#maxQueue) return Promise.reject(this.#refusal());
    return new Promise((resolve) => {
      this.#queue.push(resolve);
      this.#startPump();
    });
  }

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void this.#pump();
  }

  /** Lets the queue's head go once an interval has passed since the last start, until empty. */
  async #pump(): Promise<void> {
    while (this.#queue.length > 0) {
      const wait = this.#lastStart + this.#intervalMs - this.#now();
      if (wait > 0) {
        try {
          await this.#sleep(wait);
        } catch {
          // A timer does not fail; should an injected one, the loop simply measures again.
        }
        continue;
      }
      this.#lastStart = this.#now();
      this.#queue.shift()?.();
    }
    // Cleared in the same turn as the emptiness check: a take() arriving later starts anew.
    this.#pumping = false;
  }

  #refusal() {
    const untilNext = this.#lastStart + this.#intervalMs - this.#now();
    const retryAfter = Math.max(1, Math.ceil(untilNext / 1000));
    return Errors.CARGO_CACHER_RATE_LIMITED(
      `${this.#maxQueue} requests are already waiting for ${this.#target}, which cargo-cacher ` +
        `asks at most once every ${this.#intervalMs / 1000}s; retry in ${retryAfter}s`,
      { retryAfter },
    );
  }
}
