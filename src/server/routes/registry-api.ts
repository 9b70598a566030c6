/**
 * @module
 * The registry web API below the `api` of the served `config.json` (which points here): the
 * reads cargo and tools make (`cargo search`, crate metadata for cargo-deny, cargo-outdated and
 * IDEs) answered through `cache/api-cache.ts`, and every write (publish, yank, owners) refused
 * with 405 and a line cargo prints: this is a cache, not a registry.
 *
 * Route specificity: fastify's router prefers static segments to parameters, so `…/versions`
 * and `…/owners` win over `…/{version}`, and `…/{version}/download` (routes/crates.ts) stays
 * the crate download. The write catch-all `/api/*` loses to every route registered for the
 * same method (`POST /api/v1/prefetch`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiAnswer, ApiCache } from '../../cache/api-cache.ts';
import { Errors } from '../../errors.ts';
import {
  type ApiRequest,
  parseMetadata,
  parseSearch,
  type SearchParams,
} from '../../registry/api-request.ts';
import { isNotModified } from '../http-cache.ts';
import { cacheStatusHeader, recordOutcome } from '../request-context.ts';

type Params = { name: string; version: string };

/** Registers the registry API reads (when a cache is given) and the refusal of writes. */
export function registerRegistryApiRoutes(app: FastifyInstance, api: ApiCache | undefined): void {
  if (api) registerReads(app, api);
  app.route({
    method: ['PUT', 'POST', 'DELETE', 'PATCH'],
    url: '/api/*',
    // Refused before the body is read: a publish uploads the whole crate.
    onRequest(request, reply, done) {
      request.cacher.kind = 'registry-api';
      const refusal = writeRefusal(request.url);
      reply.header('allow', refusal.allow);
      done(Errors.CARGO_CACHER_NOT_A_REGISTRY(refusal.detail));
    },
    handler: async function neverReached() {
      throw Errors.CARGO_CACHER_NOT_A_REGISTRY(writeRefusal('/api/').detail);
    },
  });
}

function registerReads(app: FastifyInstance, api: ApiCache): void {
  const serve = (request: FastifyRequest, reply: FastifyReply, read: () => ApiRequest) => {
    request.cacher.kind = 'registry-api';
    return answerWith(api, read(), request, reply);
  };
  app.get('/api/v1/crates', function search(request, reply) {
    return serve(request, reply, () => parseSearch(request.query as SearchParams));
  });
  app.get<{ Params: Params }>('/api/v1/crates/:name', function crate(request, reply) {
    return serve(request, reply, () => parseMetadata(request.params.name, 'crate'));
  });
  app.get<{ Params: Params }>('/api/v1/crates/:name/versions', function versions(request, reply) {
    return serve(request, reply, () => parseMetadata(request.params.name, 'versions'));
  });
  app.get<{ Params: Params }>('/api/v1/crates/:name/owners', function owners(request, reply) {
    return serve(request, reply, () => parseMetadata(request.params.name, 'owners'));
  });
  app.get<{ Params: Params }>('/api/v1/crates/:name/:version', function version(request, reply) {
    const { name, version } = request.params;
    return serve(request, reply, () => parseMetadata(name, { version }));
  });
}

async function answerWith(
  api: ApiCache,
  wanted: ApiRequest,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const found = await api.get(wanted);
  recordOutcome(request, found.outcome, { upstreamBytes: found.upstreamBytes });
  return sendAnswer(request, reply, found);
}

/** Upstream's JSON as it came, with our validators; a bodiless 304 when the client has it. */
function sendAnswer(request: FastifyRequest, reply: FastifyReply, found: ApiAnswer) {
  const { file } = found;
  reply
    .header('cache-control', 'no-cache')
    .header('x-cache-status', cacheStatusHeader(found.outcome))
    .header('etag', file.etag);
  if (found.outcome === 'stale') reply.header('x-cargo-cacher-stale', 'upstream unreachable');
  if (found.status === 200 && isNotModified(request.headers, file.etag, file.lastModified)) {
    return reply.code(304).send();
  }
  return reply
    .code(found.status)
    .header('last-modified', file.lastModified)
    .type('application/json; charset=utf-8')
    .send(file.body);
}

/** The first words of every refusal: what cargo prints after "the remote server responded". */
const NOT_A_REGISTRY = 'cargo-cacher is a cache, not a registry';

/** Paths below `/api/v1/crates` that have a GET route here (search, metadata, downloads). */
const READABLE = /^\/api\/v1\/crates(?:\/[^/]+(?:\/[^/]+(?:\/download)?)?)?$/;

/**
 * Why a write under `/api/` is refused, in one line naming where it belongs, and the methods the
 * path does take (`Allow`, which a 405 must carry: RFC 9110 §15.5.6).
 */
export function writeRefusal(url: string): { detail: string; allow: string } {
  const path = url.split('?')[0] ?? url;
  const segments = path.split('/').slice(4);
  const isCrates = path === '/api/v1/crates' || path.startsWith('/api/v1/crates/');
  let where = 'it takes no writes: send them to the upstream registry';
  if (isCrates && segments.length === 1 && segments[0] === 'new') {
    where = 'publish to the upstream registry (for crates.io: cargo publish --registry crates-io)';
  } else if (isCrates && /^(un)?yank$/.test(segments[2] ?? '') && segments.length === 3) {
    where = 'yank on the upstream registry (for crates.io: cargo yank --registry crates-io)';
  } else if (isCrates && segments[1] === 'owners' && segments.length === 2) {
    where =
      'change owners on the upstream registry (for crates.io: cargo owner --registry crates-io)';
  }
  // Other paths under /api/ (jobs, stats, policy) are reads, except prefetch's POST, which
  // never arrives here.
  const readable = isCrates ? READABLE.test(path) : true;
  return { detail: `${NOT_A_REGISTRY}: ${where}`, allow: readable ? 'GET, HEAD' : '' };
}
