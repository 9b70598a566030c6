/**
 * @module
 * The URL clients reach the proxy at: `--public-url` when given, else built from the request.
 */
import type { FastifyRequest } from 'fastify';
import { Errors } from '../errors.ts';

/** A Host header is a host name or address and an optional port, nothing else. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The base URL to write into served documents, without trailing slash. */
export function publicUrlFor(request: FastifyRequest, configured: string | undefined): string {
  if (configured !== undefined) return configured;
  // HTTP/2 requests name the host in the `:authority` pseudo-header (RFC 9113 §8.3.1).
  const authority = request.headers[':authority'];
  const host = request.headers.host ?? (typeof authority === 'string' ? authority : '');
  if (!HOST.test(host)) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(
      'the Host header is missing or malformed; set --public-url to serve config.json',
    );
  }
  return `${request.protocol}://${host}`;
}
