/**
 * @module
 * An answer that refuses a request ends it. A client refused with 400, 401, 403, 413 (and the
 * like) could otherwise keep its connection, or keep trickling a body nobody will read, for as
 * long as it likes: a flood of such clients without a token held every file descriptor. So the
 * refusal goes out with `Connection: close` and the connection is closed once it is sent
 * (HTTP/1.1), or the stream is reset with NO_ERROR after the answer (HTTP/2, RFC 9113 8.1: "a
 * server can send a complete response prior to the client sending an entire request").
 */
import { constants, type Http2ServerResponse } from 'node:http2';
import type { FastifyReply } from 'fastify';
import type { RawRequest } from './fast-index.ts';

/** Statuses that refuse the request itself, whatever its body would have said. */
const REFUSALS = new Set([400, 401, 403, 405, 408, 411, 413, 414, 415, 431]);

/**
 * When `reply` refuses the request, arranges for the connection (HTTP/1.1) or the stream
 * (HTTP/2) to end with the answer; the rest of the request body is never read. Call before the
 * headers are sent.
 */
export function endsWithRefusal(request: RawRequest, reply: FastifyReply): void {
  if (!REFUSALS.has(reply.statusCode)) return;
  if (request.httpVersionMajor !== 2) {
    // Node ends the connection after a response that carries this header.
    reply.header('connection', 'close');
    return;
  }
  const stream = (reply.raw as unknown as Http2ServerResponse).stream;
  reply.raw.once('finish', () => {
    if (!stream.destroyed && !stream.state.remoteClose) stream.close(constants.NGHTTP2_NO_ERROR);
  });
}

/** False when a request carries more than one `Host` header. */
export function hasOneHost(rawHeaders: readonly string[]): boolean {
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (name?.length === 4 && name.toLowerCase() === 'host') hosts += 1;
  }
  return hosts <= 1;
}
