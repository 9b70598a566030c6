/**
 * @module
 * Upstream health, observed from the outside: {@link observeHttpClient} wraps an
 * {@link HttpClient} and reports every upstream request (status, latency to the response
 * headers, failures by reason) to an {@link UpstreamObserver}. The caches stay unaware of it.
 */
import type { Readable } from 'node:stream';
import type { HttpClient } from './http-client.ts';

/** Which upstream a request went to. */
export type UpstreamSource = 'index' | 'crate' | 'rustup';

/** Why an upstream request failed. */
export type UpstreamFailure =
  | 'timeout'
  | 'unreachable'
  | 'http-5xx'
  | 'http-429'
  | 'http-4xx'
  | 'body';

/** One upstream request, as observers see it. */
export interface UpstreamResult {
  source: UpstreamSource;
  url: string;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Milliseconds until the response headers (or the failure). */
  latencyMs: number;
  failure?: UpstreamFailure;
  /** The error message of a failure. */
  detail?: string;
}

/** Receives every upstream request; must not throw or block. */
export type UpstreamObserver = (result: UpstreamResult) => void;

/**
 * Wraps `http` so each request is reported to `observe`. 404/410/451 are answers, not failures
 * (an unknown crate); 429 and 5xx are failures; a body that breaks off after the headers is
 * reported a second time, as a `body` failure.
 *
 * @example const crateHttp = observeHttpClient(http, 'crate', (r) => stats.upstream(r));
 */
export function observeHttpClient(
  http: HttpClient,
  source: UpstreamSource,
  observe: UpstreamObserver,
  now: () => number = performance.now.bind(performance),
): HttpClient {
  return {
    async get(url, headers) {
      const started = now();
      let response: Awaited<ReturnType<HttpClient['get']>>;
      try {
        response = await http.get(url, headers);
      } catch (err) {
        const failure = isTimeout(err) ? 'timeout' : 'unreachable';
        report(observe, { source, url, latencyMs: now() - started, failure, detail: message(err) });
        throw err;
      }
      const { status } = response;
      const failure = failureOfStatus(status);
      report(observe, {
        source,
        url,
        status,
        latencyMs: now() - started,
        ...(failure && { failure, detail: `upstream answered ${status}` }),
      });
      if (!failure) {
        watchBody(response.body, (err) => {
          const detail = message(err);
          report(observe, { source, url, status, latencyMs: 0, failure: 'body', detail });
        });
      }
      return response;
    },
    close: () => http.close(),
    ...(http.describeFailure && { describeFailure: http.describeFailure }),
  };
}

/** The failure a status stands for, if any. */
export function failureOfStatus(status: number): UpstreamFailure | undefined {
  if (status === 429) return 'http-429';
  if (status >= 500) return 'http-5xx';
  if (status >= 400 && status !== 404 && status !== 410 && status !== 451) return 'http-4xx';
  return undefined;
}

/** Network errors only: our own aborts (checksum mismatch, size limit) are not upstream's. */
function watchBody(body: Readable, onError: (err: unknown) => void): void {
  body.once('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? '';
    if (code.startsWith('UND_ERR') || code.startsWith('ECONN') || code === 'EPIPE') onError(err);
  });
}

function isTimeout(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } }).cause;
  return /TIMEOUT/.test(cause?.code ?? '');
}

function message(err: unknown): string {
  return (err as Error).message ?? String(err);
}

function report(observe: UpstreamObserver, result: UpstreamResult): void {
  try {
    observe(result);
  } catch {
    // Statistics must never break a download.
  }
}
