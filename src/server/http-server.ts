/**
 * @module
 * The HTTP server under fastify (its `serverFactory` option): every request passes the fast
 * path (fast-index.ts) first and goes on to fastify's handler when the fast path declines.
 * HTTP/1.1, or with TLS HTTP/2 with HTTP/1.1 on the same port (tls.ts). Its deadlines and
 * connection caps come from `--client-*` and `--max-connections*` (config.ts `ClientLimits`),
 * the same on both; fastify's own timeout options are not used.
 */
import { createServer, type Server } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { FastifyServerFactory } from 'fastify';
import type { ConnectionGuard } from './connection-guard.ts';
import type { FastPath, RawRequest, RawResponse } from './fast-index.ts';
import type { TlsCredentials } from './tls.ts';

/** How often Node checks the header and request deadlines (its default is every 30 s). */
const DEADLINE_CHECK_INTERVAL_MS = 1_000;

/**
 * HTTP/2 streams one session may have open at once. cargo asks for far fewer; without a cap a
 * client could open thousands, each holding a file descriptor.
 */
const MAX_CONCURRENT_STREAMS = 128;

/** A `serverFactory` whose server tries `fastPath` before fastify. */
export function serverFactoryWith(
  fastPath: FastPath,
  tls: TlsCredentials | undefined,
  guard: ConnectionGuard,
): FastifyServerFactory {
  return ((handler: (request: RawRequest, response: RawResponse) => void) => {
    const onRequest = (request: RawRequest, response: RawResponse) => {
      if (request.httpVersionMajor === 1) guard.onHttp1Request(request);
      if (!fastPath(request, response)) handler(request, response);
    };
    const server = tls
      ? createSecureServer(
          {
            allowHTTP1: true,
            cert: tls.cert,
            key: tls.key,
            settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
          },
          onRequest,
        )
      : createServer({ connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS }, onRequest);
    applyHttp1Deadlines(server, guard);
    guard.attach(server);
    return server;
  }) as unknown as FastifyServerFactory;
}

/**
 * Node's own HTTP/1.1 deadlines: headers, the whole request, and idle keep-alive. The secure
 * HTTP/2 server applies them to its HTTP/1.1 connections too (`allowHTTP1`), but only when set
 * on it: its keep-alive timeout is otherwise unset, and idle TLS connections were never closed.
 */
function applyHttp1Deadlines(server: Server | Http2SecureServer, guard: ConnectionGuard): void {
  const limits = guard.limits;
  const http1 = server as Server;
  http1.headersTimeout = limits.headersTimeoutMs;
  http1.requestTimeout = limits.requestTimeoutMs;
  http1.keepAliveTimeout = limits.idleTimeoutMs;
  // Read when the server starts listening; the plain server took it as an option above.
  (http1 as { connectionsCheckingInterval?: number }).connectionsCheckingInterval =
    DEADLINE_CHECK_INTERVAL_MS;
}
