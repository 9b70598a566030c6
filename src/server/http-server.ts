/**
 * @module
 * The HTTP server under fastify (its `serverFactory` option): every request passes the fast
 * path (fast-index.ts) first and goes on to fastify's handler when the fast path declines.
 * The server is the one fastify would create itself, with fastify's timeouts: HTTP/1.1, or with
 * TLS HTTP/2 with HTTP/1.1 on the same port (tls.ts).
 */
import { createServer } from 'node:http';
import { createSecureServer } from 'node:http2';
import type { FastifyServerFactory } from 'fastify';
import type { FastPath, RawRequest, RawResponse } from './fast-index.ts';
import type { TlsCredentials } from './tls.ts';

/** The fastify options the server takes over (fastify fills in its defaults). */
interface ServerTimeouts {
  keepAliveTimeout: number;
  requestTimeout: number;
  connectionTimeout: number;
  http2SessionTimeout: number;
}

/** A `serverFactory` whose server tries `fastPath` before fastify. */
export function serverFactoryWith(
  fastPath: FastPath,
  tls: TlsCredentials | undefined,
): FastifyServerFactory {
  return ((
    handler: (request: RawRequest, response: RawResponse) => void,
    timeouts: ServerTimeouts,
  ) => {
    const onRequest = (request: RawRequest, response: RawResponse) => {
      if (!fastPath(request, response)) handler(request, response);
    };
    if (tls) {
      const server = createSecureServer(
        { allowHTTP1: true, cert: tls.cert, key: tls.key },
        onRequest,
      );
      // As fastify's own HTTP/2 server: a session idle this long is closed.
      server.on('session', (session) => {
        session.setTimeout(timeouts.http2SessionTimeout, () => session.close());
      });
      server.setTimeout(timeouts.connectionTimeout);
      return server;
    }
    const server = createServer(onRequest);
    server.keepAliveTimeout = timeouts.keepAliveTimeout;
    server.requestTimeout = timeouts.requestTimeout;
    server.setTimeout(timeouts.connectionTimeout);
    return server;
  }) as unknown as FastifyServerFactory;
}
