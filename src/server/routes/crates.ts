/**
 * @module
 * Crate downloads at `/api/v1/crates/{name}/{version}/download`, the seed's path and the one
 * cargo builds from the served `dl` (no markers: `/{crate}/{version}/download` is appended).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CrateLookup } from '../../cache/crate-cache.ts';
import { Errors } from '../../errors.ts';
import { isValidCrateName } from '../../registry/crate-name.ts';
import { isValidVersion } from '../../registry/version.ts';
import type { AppServices } from '../app.ts';
import { isNotModified } from '../http-cache.ts';
import { cacheStatusHeader, recordOutcome } from '../request-context.ts';

/** `.crate` files never change once published (crates.io serves them `immutable`). */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** How long a miss's headers go ahead of its body (see {@link sendHeadersThenBody}). */
const HEADERS_AHEAD_MS = 1;

/** Registers the crate download route. */
export function registerCrateRoutes(app: FastifyInstance, services: AppServices): void {
  app.get<{ Params: { name: string; version: string } }>(
    '/api/v1/crates/:name/:version/download',
    async function serveCrate(request, reply) {
      request.cacher.kind = 'crate';
      const { name, version } = request.params;
      if (!isValidCrateName(name)) {
        throw Errors.CARGO_CACHER_BAD_REQUEST(`invalid crate name ${JSON.stringify(name)}`);
      }
      if (!isValidVersion(version)) {
        throw Errors.CARGO_CACHER_BAD_REQUEST(`invalid version ${JSON.stringify(version)}`);
      }
      const crate = { name: name.toLowerCase(), version };
      const found = await services.crates.open(crate, {
        clientHas: (checksum) => isNotModified(request.headers, etagOf(checksum), undefined),
      });
      recordOutcome(request, found.outcome, { crate, upstreamBytes: found.upstreamBytes });
      if (found.notStored) reply.header('x-cargo-cacher-not-stored', found.notStored);
      return sendCrate(request, reply, found);
    },
  );
}

function etagOf(checksum: string): string {
  return `"sha256-${checksum}"`;
}

/** Sends a crate, or a 304 when the client has it (the lookup then carries no body). */
function sendCrate(request: FastifyRequest, reply: FastifyReply, crate: CrateLookup) {
  reply
    .header('content-type', 'application/gzip')
    .header('cache-control', IMMUTABLE)
    .header('x-cache-status', cacheStatusHeader(crate.outcome));
  if (crate.size !== undefined) reply.header('content-length', crate.size);
  if (crate.checksum) reply.header('etag', etagOf(crate.checksum));
  if (crate.body === undefined) return reply.code(304).removeHeader('content-length').send();
  const isHttp1Get = request.method === 'GET' && request.raw.httpVersionMajor === 1;
  if (crate.outcome === 'miss' && Buffer.isBuffer(crate.body) && isHttp1Get) {
    return sendHeadersThenBody(request, reply, crate.body);
  }
  return reply.send(crate.body);
}

/**
 * Sends a downloaded crate as its headers, then, a millisecond later, its body. Over HTTP/1.1
 * cargo's curl opens its second connection (cargo allows two per host) only when a queued
 * download finds the first connection with a response under way, that is when curl reads the
 * headers of a response before its body; a miss answered in one write never shows that, and
 * cargo then downloads one crate at a time (measured: a cold `cargo fetch` of 300 crates took
 * twice as long). The millisecond is what a busy client needs to read the headers alone; the
 * miss waited for upstream far longer. A hit keeps its single write: it is answered at once, so
 * a second connection would not help. HTTP/2 multiplexes anyway.
 */
function sendHeadersThenBody(
  request: FastifyRequest,
  reply: FastifyReply,
  body: Buffer,
): FastifyReply {
  // Taken over from fastify, which writes headers and body together; its onSend hook does not
  // run, so the time to first byte is noted here. buildApp's 'close' listener still reports.
  request.cacher.ttfbMs ??= reply.elapsedTime;
  reply.hijack();
  const response = reply.raw;
  response.writeHead(200, reply.getHeaders() as OutgoingHttpHeaders);
  response.flushHeaders();
  setTimeout(() => response.end(body), HEADERS_AHEAD_MS);
  return reply;
}
