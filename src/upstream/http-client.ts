/**
 * @module
 * The one HTTP client for upstreams: an undici `Agent` with timeouts, redirects and an
 * identifying User-Agent. Every upstream request goes through {@link HttpClient.get}.
 */
import { type LookupAddress, type LookupAllOptions, type LookupOptions, lookup } from 'node:dns';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, interceptors, request } from 'undici';
import type { UpstreamTimeouts } from '../config.ts';
import { Errors } from '../errors.ts';
import { USER_AGENT } from '../version.ts';

/** What an upstream answered. The body must be consumed or destroyed by the caller. */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** Fetches upstream URLs. Injected so tests and later tiers can replace it. */
export interface HttpClient {
  /**
   * GETs a URL; network failures reject with `CARGO_CACHER_UPSTREAM_UNREACHABLE`, timeouts with
   * `CARGO_CACHER_UPSTREAM_TIMEOUT`.
   */
  get(url: string, headers?: Record<string, string>): Promise<UpstreamResponse>;
  /** Describes a failure of a request or of its body (the same mapping {@link get} uses). */
  describeFailure?(url: string, cause: unknown): Error;
  close(): Promise<void>;
}

/** Creates the undici-backed client. Redirects are followed, as cargo follows them. */
export function createHttpClient(timeouts: UpstreamTimeouts): HttpClient {
  const dispatcher: Dispatcher = new Agent({
    connectTimeout: timeouts.connectMs,
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs,
    connections: 64,
    connect: { lookup: lookupRefusingInvalid },
  }).compose(interceptors.redirect({ maxRedirections: 5 }));
  const describeFailure = (url: string, cause: unknown) => upstreamFailure(url, cause, timeouts);

  return {
    async get(url, headers = {}) {
      try {
        const response = await request(url, {
          method: 'GET',
          dispatcher,
          headers: { 'user-agent': USER_AGENT, ...headers },
        });
        return { status: response.statusCode, headers: response.headers, body: response.body };
      } catch (cause) {
        throw describeFailure(url, cause);
      }
    },
    describeFailure,
    async close() {
      await dispatcher.close();
    },
  };
}

/** The flag that sets each undici timeout, named in the error so the fix is obvious. */
const TIMEOUTS: Record<string, [keyof UpstreamTimeouts, string, string]> = {
  UND_ERR_CONNECT_TIMEOUT: ['connectMs', 'connect', '--upstream-connect-timeout'],
  UND_ERR_HEADERS_TIMEOUT: ['headersMs', 'answer', '--upstream-timeout'],
  UND_ERR_BODY_TIMEOUT: ['bodyMs', 'send its body', '--upstream-body-timeout'],
};

/** Plain words for the network errors an operator meets. */
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name does not resolve (DNS)',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed before the answer was complete',
};

/**
 * Wraps a network error: `CARGO_CACHER_UPSTREAM_TIMEOUT` for undici's timeouts, else
 * `CARGO_CACHER_UPSTREAM_UNREACHABLE`. undici's `UND_ERR_*` code stays in `cause`.
 */
export function upstreamFailure(url: string, cause: unknown, timeouts?: UpstreamTimeouts): Error {
  const reason = (cause as { code?: string; message?: string }) ?? {};
  const host = new URL(url).host;
  const timeout = reason.code === undefined ? undefined : TIMEOUTS[reason.code];
  if (timeout) {
    const [key, what, flag] = timeout;
    const limit = timeouts ? ` within ${timeouts[key] / 1000}s (${flag})` : ` in time (${flag})`;
    return Errors.CARGO_CACHER_UPSTREAM_TIMEOUT(`upstream ${host} did not ${what}${limit}`, {
      cause,
      retryAfter: 5,
    });
  }
  const words = (reason.code && REASONS[reason.code]) ?? reason.message ?? 'unknown error';
  const code = reason.code && REASONS[reason.code] ? ` (${reason.code})` : '';
  return Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE(
    `upstream ${host} unreachable: ${words}${code}; check the network and -s/-u`,
    { cause, retryAfter: 5 },
  );
}

/**
 * DNS lookup that answers names under `.invalid` with ENOTFOUND at once, as RFC 6761 §6.4 asks
 * of resolvers ("always return immediate negative responses"): no query leaves the machine.
 */
function lookupRefusingInvalid(
  hostname: string,
  options: LookupOptions,
  callback: LookupCallback,
): void {
  if (/(^|\.)invalid\.?$/i.test(hostname)) {
    const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    err.code = 'ENOTFOUND';
    process.nextTick(callback, err, '', 0);
    return;
  }
  lookup(hostname, { ...options, all: options.all === true } as LookupAllOptions, callback);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** Reads a whole (small) body into memory, failing past `maxBytes` or on a broken stream. */
export async function readBody(
  url: string,
  body: Readable,
  maxBytes: number,
  describe: (url: string, cause: unknown) => Error = upstreamFailure,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        body.destroy();
        throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
          `upstream body of ${url} exceeds ${maxBytes} bytes`,
        );
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'CARGO_CACHER_UPSTREAM_INVALID') throw err;
    throw describe(url, err);
  }
  return Buffer.concat(chunks);
}

/** Returns one header as a string (first value when repeated). */
export function headerValue(
  headers: UpstreamResponse['headers'],
  name: string,
): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Discards a body we are not going to read, so the connection can be reused. */
export async function discardBody(body: Readable): Promise<void> {
  try {
    for await (const _ of body) {
      // drain
    }
  } catch {
    // the connection is gone anyway
  }
}
