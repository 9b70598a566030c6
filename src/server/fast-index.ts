/**
 * @module
 * The fast path for hot index files. cargo asks for index files far more often than for
 * anything else, and most are fresh in memory; profiles of such requests under load put more
 * than half of the CPU time in fastify's routing, hooks and reply handling. So an index file
 * that is hot is answered from Node's request event, before fastify sees the request.
 *
 * Nothing is decided twice: the answer (headers, validators, gzip variant) comes from
 * `indexFileAnswer`, the token check from `roleOfHeader`, the record statistics get from
 * `finishedRequest`/`reportRequest`, the same functions the fastify route and hooks use.
 * Anything else goes on to fastify unchanged: other methods and paths, a file not hot, a
 * missing or wrong token (fastify answers the 401 with its challenge), two Host headers
 * (fastify answers 400), a gzip variant not
 * compressed yet (the route compresses and keeps it), or a server that is closing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { IndexCache } from '../cache/index-cache.ts';
import { crateNameFromIndexPath } from '../registry/crate-name.ts';
import type { RequestObserver } from './app.ts';
import { roleOfHeader, type TokenTable } from './auth.ts';
import { acceptsGzip, type GzipCache } from './http-cache.ts';
import { hasOneHost } from './refusal.ts';
import { finishedRequest, type RequestOutcome, reportRequest } from './request-context.ts';
import { indexFileAnswer, rawIndexPath } from './routes/sparse-index.ts';

/** A request as Node's HTTP/1.1 or HTTP/2 (compatibility API) server gives it. */
export type RawRequest = IncomingMessage | Http2ServerRequest;
/** The matching response. */
export type RawResponse = ServerResponse | Http2ServerResponse;

/** Answers a request and returns `true`, or returns `false` and leaves it to fastify. */
export type FastPath = (request: RawRequest, response: RawResponse) => boolean;

/** What the fast path reads. */
export interface FastIndexDeps {
  index: Pick<IndexCache, 'hot'>;
  gzip: GzipCache;
  /** The token table when `--auth-token-file` is set. */
  tokens: TokenTable | undefined;
  observers: readonly RequestObserver[];
  log: Parameters<typeof reportRequest>[2];
  /** True once the server is closing: fastify then answers 503. */
  closing: () => boolean;
}

/** How every request the fast path answers went (the time to first byte is the duration). */
const HOT_INDEX_HIT: RequestOutcome = Object.freeze({
  kind: 'sparse-index',
  outcome: 'hit',
  crate: undefined,
  upstreamBytes: 0,
  ttfbMs: undefined,
  errorCode: undefined,
});

/** Builds the fast path for hot index files. */
export function createFastIndexPath(deps: FastIndexDeps): FastPath {
  return function serveHotIndexFile(request, response) {
    const started = performance.now();
    const url = request.url;
    if (request.method !== 'GET' || !url?.startsWith('/index/') || deps.closing()) return false;
    // fastify answers a request with two Host headers 400 (app.ts).
    if (!hasOneHost(request.rawHeaders)) return false;
    const path = rawIndexPath(url);
    // config.json is held in the same memory, but is served rewritten by its own route.
    if (crateNameFromIndexPath(path) === undefined) return false;
    const file = deps.index.hot(path);
    if (file === undefined) return false;
    // Every index file is readable with any valid token (auth.ts); GET never needs admin.
    if (deps.tokens && roleOfHeader(deps.tokens, request.headers.authorization) === undefined) {
      return false;
    }
    let compressed: Buffer | undefined;
    if (acceptsGzip(request.headers['accept-encoding'])) {
      const ready = deps.gzip.ready(file.etag, file.body);
      if (ready === undefined) return false;
      compressed = ready ?? undefined;
    }
    const answer = indexFileAnswer(file, 'hit', request.headers, compressed);
    // The header and the body leave in one write.
    (response as ServerResponse).writeHead(answer.status, answer.headers);
    (response as ServerResponse).end(answer.body);
    const durationMs = performance.now() - started;
    const finished = finishedRequest(HOT_INDEX_HIT, {
      method: 'GET',
      httpVersion: request.httpVersion,
      url,
      status: answer.status,
      bytesSent: answer.body?.length ?? 0,
      durationMs,
      aborted: false,
    });
    reportRequest(finished, deps.observers, deps.log);
    return true;
  };
}
