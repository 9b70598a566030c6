/**
 * @module
 * The fast path for hot index files. cargo asks for index files far more often than for
 * anything else, and most are fresh in memory; profiles of such requests under load put more
 * than half of the CPU time in fastify's routing, hooks and reply handling. So an index file
 * that is hot is answered from Node's request event, before fastify sees the request.
 *
 * Nothing is decided twice: whether the file is hot and its gzip variant ready comes from
 * `IndexVariants` (cache/), whether the request may be answered from `admissionOf`, the answer
 * (headers, validators, 304) from `indexFileAnswer`, and the statistics record from
 * `recordRequest`: the same functions fastify's route and hooks use. Anything else goes on to
 * fastify unchanged: other methods and paths, a file not hot, a refused request (fastify
 * answers the 401, 403 or 503), two Host headers (fastify answers 400), or a gzip variant not
 * compressed yet (the route compresses and keeps it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { IndexVariants } from '../cache/index-variants.ts';
import type { RequestObserver, RequestOutcome } from '../observe/records.ts';
import { type AdmissionGate, admissionOf } from './admission.ts';
import { acceptsGzip } from './http-cache.ts';
import { hasOneHost } from './refusal.ts';
import { type RequestLog, recordRequest } from './request-context.ts';
import { indexFileAnswer, rawIndexPath } from './routes/sparse-index.ts';

/** A request as Node's HTTP/1.1 or HTTP/2 (compatibility API) server gives it. */
export type RawRequest = IncomingMessage | Http2ServerRequest;
/** The matching response. */
export type RawResponse = ServerResponse | Http2ServerResponse;

/** Answers a request and returns `true`, or returns `false` and leaves it to fastify. */
export type FastPath = (request: RawRequest, response: RawResponse) => boolean;

/** What the fast path reads. */
export interface FastIndexDeps {
  variants: Pick<IndexVariants, 'hotFile' | 'readyGzip'>;
  /** The same gate fastify's `onRequest` hook admits requests through. */
  gate: AdmissionGate;
  observers: readonly RequestObserver[];
  log: RequestLog;
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
    if (request.method !== 'GET' || !url?.startsWith('/index/')) return false;
    // fastify answers a request with two Host headers 400 (app.ts).
    if (!hasOneHost(request.rawHeaders)) return false;
    const file = deps.variants.hotFile(rawIndexPath(url));
    if (file === undefined) return false;
    // After the cheaper checks: with tokens, admission hashes each one presented.
    if (admissionOf(deps.gate, 'GET', url, request.headers.authorization) !== 'admitted') {
      return false;
    }
    let compressed: Buffer | undefined;
    if (acceptsGzip(request.headers['accept-encoding'])) {
      const ready = deps.variants.readyGzip(file);
      if (ready === undefined) return false;
      compressed = ready ?? undefined;
    }
    const answer = indexFileAnswer(file, 'hit', request.headers, compressed);
    // The header and the body leave in one write.
    (response as ServerResponse).writeHead(answer.status, answer.headers);
    (response as ServerResponse).end(answer.body);
    const exchange = {
      method: 'GET',
      httpVersion: request.httpVersion,
      url,
      status: answer.status,
      bytesSent: answer.body?.length ?? 0,
      durationMs: performance.now() - started,
      aborted: false,
    };
    recordRequest(HOT_INDEX_HIT, exchange, deps.observers, deps.log);
    return true;
  };
}
