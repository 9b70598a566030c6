/**
 * @module
 * One circuit breaker per upstream host. After `failures` consecutive failures (network errors,
 * timeouts, 5xx, 429) the circuit opens: requests to that host fail at once, without touching
 * the network, for `coolDownMs`. Then one request is let through as a probe (half-open): its
 * success closes the circuit, its failure opens it for another cool-down. A dead upstream is
 * so asked once per cool-down instead of once per client request (and per retry).
 */
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';

/** The state of one host's circuit, as /health shows it. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** What {@link CircuitBreakers} needs. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open a circuit. */
  failures: number;
  coolDownMs: number;
  log: AppLogger;
  now?: () => number;
}

/** A request let through by {@link CircuitBreakers.admit}; report its result exactly once. */
export interface Admission {
  host: string;
  /** True for the one request that tests a circuit after its cool-down. */
  probe: boolean;
}

interface HostCircuit {
  failures: number;
  /** When the circuit may half-open; 0 while closed. */
  openUntil: number;
  /** When the running probe started; 0 when none runs. */
  probeStartedAt: number;
  lastError: string | undefined;
}

/** The circuit breakers of one instance, keyed by upstream host (`host:port`). */
export class CircuitBreakers {
  readonly #options: CircuitBreakerOptions;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostCircuit>();

  constructor(options: CircuitBreakerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Lets a request to `host` through, or throws `CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN` (with the
   * seconds left as `retryAfter`) while its circuit is open or a probe is running.
   */
  admit(host: string): Admission {
    const circuit = this.#hosts.get(host);
    if (circuit === undefined || circuit.openUntil === 0) return { host, probe: false };
    const now = this.#now();
    if (now < circuit.openUntil) throw this.#openError(host, circuit, circuit.openUntil - now);
    // A probe that never reported (its caller vanished) must not keep the circuit shut forever.
    if (circuit.probeStartedAt !== 0 && now - circuit.probeStartedAt < this.#options.coolDownMs) {
      throw this.#openError(host, circuit, 1000);
    }
    circuit.probeStartedAt = now;
    this.#options.log.info({ host }, `upstream ${host}: cool-down over, sending one probe`);
    return { host, probe: true };
  }

  /** The host answered (any status that is not a failure): its circuit closes. */
  success(admission: Admission): void {
    const circuit = this.#hosts.get(admission.host);
    if (circuit === undefined) return;
    const wasOpen = circuit.openUntil !== 0;
    if (wasOpen && !admission.probe) return; // a request admitted before the circuit opened
    this.#hosts.delete(admission.host);
    if (wasOpen) {
      this.#options.log.notice(
        { host: admission.host },
        `upstream ${admission.host} answers again: circuit closed`,
      );
    }
  }

  /** The request failed in a way that counts against the host. */
  failure(admission: Admission, reason: string): void {
    const { host } = admission;
    const circuit = this.#hosts.get(host) ?? {
      failures: 0,
      openUntil: 0,
      probeStartedAt: 0,
      lastError: undefined,
    };
    this.#hosts.set(host, circuit);
    circuit.failures += 1;
    circuit.lastError = reason;
    const { coolDownMs, failures, log } = this.#options;
    const seconds = Math.ceil(coolDownMs / 1000);
    if (admission.probe) {
      circuit.probeStartedAt = 0;
      circuit.openUntil = this.#now() + coolDownMs;
      log.warn(
        { host },
        `upstream ${host} probe failed (${reason}): circuit open ${seconds}s more`,
      );
    } else if (circuit.openUntil === 0 && circuit.failures >= failures) {
      circuit.openUntil = this.#now() + coolDownMs;
      log.warn(
        { host, failures: circuit.failures },
        `upstream ${host} failed ${circuit.failures} times in a row (${reason}): ` +
          `circuit open, failing fast for ${seconds}s`,
      );
    }
  }

  /** The state of `host`'s circuit. */
  state(host: string): CircuitState {
    const circuit = this.#hosts.get(host);
    if (circuit === undefined || circuit.openUntil === 0) return 'closed';
    return this.#now() < circuit.openUntil ? 'open' : 'half-open';
  }

  /** Every host that failed lately, with its state, for /health. */
  snapshot(): { host: string; state: CircuitState; failures: number; lastError?: string }[] {
    return [...this.#hosts].map(([host, circuit]) => ({
      host,
      state: this.state(host),
      failures: circuit.failures,
      ...(circuit.lastError !== undefined && { lastError: circuit.lastError }),
    }));
  }

  #openError(host: string, circuit: HostCircuit, remainingMs: number) {
    const seconds = Math.max(1, Math.ceil(remainingMs / 1000));
    return Errors.CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN(
      `upstream ${host} is failing (${circuit.lastError ?? 'unknown error'}); not asking it ` +
        `again for ${seconds}s. Cached crates and index files are still served`,
      { retryAfter: seconds },
    );
  }
}

/** The `host:port` a URL's circuit is kept under. */
export function hostOf(url: string): string {
  return new URL(url).host;
}
