/**
 * @module
 * The upstream client of a running server, whose timeouts a reload (SIGHUP) can change. undici
 * fixes an agent's timeouts when it is made, so a change makes a new client, and new requests go
 * through it at once; the old one is closed gracefully, which lets the requests it carries (a
 * crate download streaming to a client) finish first.
 */
import type { UpstreamTimeouts } from '../config.ts';
import { type HttpClient, type UpstreamResponse, upstreamFailure } from './http-client.ts';

/** Makes a client with the given timeouts (everything else fixed at start). */
export type HttpClientFactory = (timeouts: UpstreamTimeouts) => HttpClient;

/** See the module comment. */
export class LiveHttpClient implements HttpClient {
  readonly #make: HttpClientFactory;
  #current: HttpClient;
  #timeouts: Readonly<UpstreamTimeouts>;
  readonly #retiring = new Set<Promise<void>>();

  constructor(make: HttpClientFactory, timeouts: Readonly<UpstreamTimeouts>) {
    this.#make = make;
    this.#timeouts = timeouts;
    this.#current = make(timeouts);
  }

  /** The timeouts new requests get. */
  get timeouts(): Readonly<UpstreamTimeouts> {
    return this.#timeouts;
  }

  get(url: string, headers?: Record<string, string>): Promise<UpstreamResponse> {
    return this.#current.get(url, headers);
  }

  /** Bound: callers pass it around as a plain function. */
  readonly describeFailure = (url: string, cause: unknown): Error =>
    this.#current.describeFailure?.(url, cause) ?? upstreamFailure(url, cause);

  /** New requests get `timeouts`; the requests under way finish on the old client. */
  setTimeouts(timeouts: Readonly<UpstreamTimeouts>): void {
    if (sameTimeouts(timeouts, this.#timeouts)) return;
    const old = this.#current;
    this.#current = this.#make(timeouts);
    this.#timeouts = timeouts;
    const closing = old.close().catch(() => undefined);
    this.#retiring.add(closing);
    void closing.finally(() => this.#retiring.delete(closing));
  }

  async close(): Promise<void> {
    await Promise.all([this.#current.close(), ...this.#retiring]);
  }
}

function sameTimeouts(a: Readonly<UpstreamTimeouts>, b: Readonly<UpstreamTimeouts>): boolean {
  return a.connectMs === b.connectMs && a.headersMs === b.headersMs && a.bodyMs === b.bodyMs;
}
