/**
 * @module
 * The sparse index at `/index/`: `config.json` with `dl` pointing here, and every index file
 * byte for byte (Cargo Book, registry-index, Sparse Protocol).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IndexLookup, IndexOutcome } from '../../cache/index-cache.ts';
import { createIndexFile, type IndexFile } from '../../cache/index-record.ts';
import { Errors } from '../../errors.ts';
import { crateNameFromIndexPath } from '../../registry/crate-name.ts';
import type { AppServices } from '../app.ts';
import { acceptsGzip, type GzipCache, gzipEtag, isNotModified } from '../http-cache.ts';
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
    return sendIndexFile(request, reply, { file, outcome, gzip: services.gzip });
  });

  app.get('/index/*', async function serveIndexFile(request, reply) {
    request.cacher.kind = 'sparse-index';
    // The raw path, not the decoded parameter: `fa%2Fke%2Ffake-a` must not name `fa/ke/fake-a`.
    const path = (request.url.split('?')[0] ?? '').slice('/index/'.length);
    const name = crateNameFromIndexPath(path);
    if (name === undefined) {
      throw Errors.CARGO_CACHER_NOT_FOUND(`/index/${path} is not an index file path`);
    }
    const hot = services.index.hot(path);
    const lookup = hot ? hotLookup(hot) : await services.index.get(path);
    if (!lookup.found) {
      // cargo ≥ 1.96 treats only 404 as "no such crate"; 410/451 become hard errors.
      throw Errors.CARGO_CACHER_NOT_FOUND(`crate ${name} does not exist`);
    }
    recordOutcome(request, lookup.outcome, { upstreamBytes: lookup.upstreamBytes });
    return sendIndexFile(request, reply, {
      file: lookup.file,
      outcome: lookup.outcome,
      gzip: services.gzip,
    });
  });
}

function hotLookup(file: IndexFile): IndexLookup {
  return { found: true, file, outcome: 'hit', upstreamBytes: 0 };
}

interface IndexResponse {
  file: IndexFile;
  outcome: IndexOutcome;
  gzip: GzipCache;
}

/**
 * Sends an index file: 304 only when the client's validators match (cargo fails on a 304 it
 * did not ask for), else 200 with a strong ETag and Last-Modified, gzipped when accepted.
 */
function sendIndexFile(
  request: FastifyRequest,
  reply: FastifyReply,
  { file, outcome, gzip }: IndexResponse,
): FastifyReply | Promise<FastifyReply> {
  recordOutcome(request, outcome);
  reply
    .header('content-type', 'text/plain; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('vary', 'Accept-Encoding')
    .header('last-modified', file.lastModified)
    .header('x-cache-status', cacheStatusHeader(outcome));
  if (outcome === 'stale') reply.header('x-cargo-cacher-stale', 'upstream unreachable');
  // Only gzip needs an await (the first time per file); the identity answer goes out at once.
  if (!acceptsGzip(request.headers['accept-encoding'])) return sendBody(request, reply, file);
  return gzip.compress(file.etag, file.body).then((compressed) => {
    return sendBody(request, reply, file, compressed);
  });
}

/** Sets the validator and sends the body, or a 304 when the client's validators match. */
function sendBody(
  request: FastifyRequest,
  reply: FastifyReply,
  file: IndexFile,
  compressed?: Buffer,
): FastifyReply {
  const etag = compressed ? gzipEtag(file.etag) : file.etag;
  reply.header('etag', etag);
  if (isNotModified(request.headers, etag, file.lastModified)) {
    return reply.code(304).send();
  }
  if (compressed) return reply.header('content-encoding', 'gzip').send(compressed);
  return reply.send(file.body);
}
