/**
 * @module
 * The sparse index at `/index/`: `config.json` with `dl` pointing here, and every index file
 * byte for byte (Cargo Book, registry-index, Sparse Protocol).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IndexOutcome } from '../../cache/index-cache.ts';
import { createIndexFile, type IndexFile } from '../../cache/index-record.ts';
import type { IndexVariants } from '../../cache/index-variants.ts';
import { Errors } from '../../errors.ts';
import { crateNameFromIndexPath } from '../../registry/crate-name.ts';
import type { AppServices } from '../app.ts';
import { acceptsGzip, gzipEtag, isNotModified } from '../http-cache.ts';
import { publicUrlFor } from '../public-url.ts';
import { cacheStatusHeader, recordOutcome } from '../request-context.ts';

/** Registers the sparse index routes. */
export function registerSparseIndexRoutes(app: FastifyInstance, services: AppServices): void {
  app.get('/index/config.json', async function serveConfig(request, reply) {
    request.cacher.kind = 'sparse-index';
    const publicUrl = publicUrlFor(request, services.config.publicUrl);
    const { body, outcome } = await services.registryConfig.servedConfig(publicUrl, {
      authRequired: services.config.authTokenFile !== undefined,
    });
    // The served bytes depend on the public URL too, so the validator is computed from them.
    const file = createIndexFile(body, {}, Date.now());
    return sendIndexFile(request, reply, { file, outcome, variants: services.indexVariants });
  });

  app.get('/index/*', async function serveIndexFile(request, reply) {
    request.cacher.kind = 'sparse-index';
    const path = rawIndexPath(request.url);
    const name = crateNameFromIndexPath(path);
    if (name === undefined) {
      throw Errors.CARGO_CACHER_NOT_FOUND(`/index/${path} is not an index file path`);
    }
    const pending = services.indexVariants.lookup(path);
    // A hot file comes without a promise: awaiting it anyway would cost a turn for nothing.
    const lookup = pending instanceof Promise ? await pending : pending;
    if (!lookup.found) {
      // cargo ≥ 1.96 treats only 404 as "no such crate"; 410/451 become hard errors.
      throw Errors.CARGO_CACHER_NOT_FOUND(`crate ${name} does not exist`);
    }
    recordOutcome(request, lookup.outcome, { upstreamBytes: lookup.upstreamBytes });
    return sendIndexFile(request, reply, {
      file: lookup.file,
      outcome: lookup.outcome,
      variants: services.indexVariants,
    });
  });
}

/**
 * The path below `/index/` as sent. The raw path, not the decoded parameter:
 * `fa%2Fke%2Ffake-a` must not name `fa/ke/fake-a`.
 */
export function rawIndexPath(url: string): string {
  const query = url.indexOf('?');
  return url.slice('/index/'.length, query < 0 ? url.length : query);
}

/** What answers a request for an index file. */
export interface IndexAnswer {
  status: 200 | 304;
  headers: Record<string, string>;
  /** `undefined` for a 304. */
  body: Buffer | undefined;
}

/**
 * The answer for an index file, shared by the route and the fast path (fast-index.ts): 304
 * only when the client's validators match (cargo fails on a 304 it did not ask for), else 200
 * with a strong ETag and Last-Modified, gzipped when `compressed` is given.
 */
export function indexFileAnswer(
  file: IndexFile,
  outcome: IndexOutcome,
  requestHeaders: { 'if-none-match'?: string; 'if-modified-since'?: string },
  compressed: Buffer | undefined,
): IndexAnswer {
  const etag = compressed ? gzipEtag(file.etag) : file.etag;
  // RFC 9110 §15.4.5: a 304 carries the validators and caching fields a 200 would, and no other
  // representation metadata (Content-Type, and Last-Modified next to an ETag).
  const headers: Record<string, string> = {
    'cache-control': 'no-cache',
    vary: 'Accept-Encoding',
    'x-cache-status': cacheStatusHeader(outcome),
    etag,
  };
  if (outcome === 'stale') headers['x-cargo-cacher-stale'] = 'upstream unreachable';
  if (isNotModified(requestHeaders, etag, file.lastModified)) {
    return { status: 304, headers, body: undefined };
  }
  const body = compressed ?? file.body;
  headers['content-type'] = 'text/plain; charset=utf-8';
  headers['last-modified'] = file.lastModified;
  if (compressed) headers['content-encoding'] = 'gzip';
  headers['content-length'] = String(body.length);
  return { status: 200, headers, body };
}

interface IndexResponse {
  file: IndexFile;
  outcome: IndexOutcome;
  variants: Pick<IndexVariants, 'gzipOf'>;
}

/** Sends an index file (see {@link indexFileAnswer}), compressing it first when needed. */
function sendIndexFile(
  request: FastifyRequest,
  reply: FastifyReply,
  { file, outcome, variants }: IndexResponse,
): FastifyReply | Promise<FastifyReply> {
  recordOutcome(request, outcome);
  // Only gzip needs an await (the first time per file); the identity answer goes out at once.
  if (!acceptsGzip(request.headers['accept-encoding'])) {
    return sendAnswer(reply, indexFileAnswer(file, outcome, request.headers, undefined));
  }
  return variants.gzipOf(file).then((compressed) => {
    return sendAnswer(reply, indexFileAnswer(file, outcome, request.headers, compressed));
  });
}

function sendAnswer(reply: FastifyReply, answer: IndexAnswer): FastifyReply {
  reply.code(answer.status).headers(answer.headers);
  return answer.body ? reply.send(answer.body) : reply.send();
}
