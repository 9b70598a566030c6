/**
 * @module
 * Crate downloads at `/api/v1/crates/{name}/{version}/download`, the seed's path and the one
 * cargo builds from the served `dl` (no markers: `/{crate}/{version}/download` is appended).
 */
import type { FastifyInstance } from 'fastify';
import { Errors } from '../../errors.ts';
import { isValidCrateName } from '../../registry/crate-name.ts';
import { isValidVersion } from '../../registry/version.ts';
import type { AppServices } from '../app.ts';
import { isNotModified } from '../http-cache.ts';
import { cacheStatusHeader, recordOutcome } from '../request-context.ts';

/** `.crate` files never change once published (crates.io serves them `immutable`). */
const IMMUTABLE = 'public, max-age=31536000, immutable';

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
      const found = await services.crates.open({ name, version });
      recordOutcome(request, found.outcome, {
        crate: { name: name.toLowerCase(), version },
        upstreamBytes: found.upstreamBytes,
      });
      reply
        .header('content-type', 'application/gzip')
        .header('cache-control', IMMUTABLE)
        .header('x-cache-status', cacheStatusHeader(found.outcome));
      if (found.blob.size !== undefined) reply.header('content-length', found.blob.size);
      if (found.passThrough) reply.header('x-cargo-cacher-not-stored', 'storage full');
      if (found.checksum) {
        const etag = `"sha256-${found.checksum}"`;
        reply.header('etag', etag);
        if (isNotModified(request.headers, etag, undefined)) {
          found.blob.stream.destroy();
          return reply.code(304).removeHeader('content-length').send();
        }
      }
      return reply.send(found.blob.stream);
    },
  );
}
