/**
 * @module
 * The one HTTP client for upstreams: an undici `Agent` with timeouts, redirects and an
 * identifying User-Agent. Every upstream request goes through {@link HttpClient.get}.
 */
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
  /** GETs a URL; network failures reject with `CARGO_CACHER_UPSTREAM_UNREACHABLE`. */
  get(url: string, headers?: Record<string, string>): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

/** Creates the undici-backed client. Redirects are followed, as cargo follows them. */
export function createHttpClient(timeouts: UpstreamTimeouts): HttpClient {
  const dispatcher: Dispatcher = new Agent({
    connectTimeout: timeouts.connectMs,
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs,
    connections: 64,
  }).compose(interceptors.redirect({ maxRedirections: 5 }));

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
        throw unreachable(url, cause);
      }
    },
    async close() {
      await dispatcher.close();
    },
  };
}

/** Wraps a network error; undici's `UND_ERR_*` code stays in `cause`. */
export function unreachable(url: string, cause: unknown) {
  const reason = (cause as { code?: string; message?: string }) ?? {};
  return Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE(
    `upstream ${new URL(url).host} unreachable: ${reason.code ?? reason.message ?? 'unknown error'}`,
    { cause, retryAfter: 5 },
  );
}

/** Reads a whole (small) body into memory, failing past `maxBytes` or on a broken stream. */
export async function readBody(url: string, body: Readable, maxBytes: number): Promise<Buffer> {
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
    throw unreachable(url, err);
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
