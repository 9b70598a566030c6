/**
 * @module
 * HTTPS with HTTP/2: cargo multiplexes its index and crate requests over one HTTP/2
 * connection only over TLS (h2 chosen by ALPN); over plain HTTP it sends one request at a time
 * (docs/TLS.md). HTTP/1.1 clients are served on the same port (`allowHTTP1`).
 */
import { readFile } from 'node:fs/promises';
import type { Http2SecureServer, Http2Session } from 'node:http2';
import { createSecureContext } from 'node:tls';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { TlsFiles } from '../config.ts';
import { Errors } from '../errors.ts';

/** PEM certificate chain and private key, as read from {@link TlsFiles}. */
export interface TlsCredentials {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads both PEM files and checks that they make a TLS context (a key that does not match the
 * certificate, or a file that is no PEM, fails here with one line, before anything listens).
 */
export async function readTlsFiles(files: TlsFiles): Promise<TlsCredentials> {
  const [cert, key] = await Promise.all([
    readPem('--tls-cert', files.certFile),
    readPem('--tls-key', files.keyFile),
  ]);
  try {
    createSecureContext({ cert, key });
  } catch (cause) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `--tls-cert ${files.certFile} and --tls-key ${files.keyFile} are not a usable ` +
        `certificate and key: ${(cause as Error).message}`,
      { cause },
    );
  }
  return { cert, key };
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`cannot read ${flag} file ${path} (${reason})`, {
      cause,
    });
  }
}

/**
 * The fastify options for HTTPS with h2 and HTTP/1.1 on one port. Node's secure HTTP/2 server
 * closes idle HTTP/1.1 connections on close by itself, so `forceCloseConnections: 'idle'` works
 * as it does over plain HTTP; HTTP/2 sessions are closed by {@link closeSessionsOnClose}.
 */
export function tlsServerOptions(tls: TlsCredentials): Partial<FastifyServerOptions> {
  return {
    http2: true,
    https: { allowHTTP1: true, cert: tls.cert, key: tls.key },
  } as unknown as Partial<FastifyServerOptions>;
}

/**
 * Closes HTTP/2 sessions gracefully when the app closes: `session.close()` lets open streams
 * (a crate download, a git fetch) finish and refuses new ones. Without it `server.close()`
 * waits for every client to hang up, and cargo keeps its connection open.
 */
export function closeSessionsOnClose(app: FastifyInstance): void {
  const server = app.server as unknown as Http2SecureServer;
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  app.addHook('preClose', (done) => {
    for (const session of sessions) session.close();
    done();
  });
}
