/**
 * @module
 * rustup's dist server: `GET /dist/*` (`RUSTUP_DIST_SERVER=http://box:8080`) and `GET /rustup/*`
 * (`RUSTUP_UPDATE_ROOT=http://box:8080/rustup`), answered by the toolchain cache. Every answer,
 * errors included, carries `X-Cache-Status`. An archive whose download fails its hash after its
 * headers went out ends with a destroyed connection, never a clean end (fastify destroys the
 * response when its body stream fails), so rustup fails its own check and keeps nothing.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ToolchainCache } from '../../cache/toolchain-cache.ts';
import type { PositionalBlob } from '../../storage/blob-store.ts';
import { pumpToResponse } from '../file-pump.ts';
import { cacheStatusHeader, recordOutcome } from '../request-context.ts';

/** Dated paths never change. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Undated ones change with each release: clients must ask again. */
const REVALIDATE = 'no-cache';

/** Registers the two toolchain routes. */
export function registerToolchainRoutes(app: FastifyInstance, toolchains: ToolchainCache): void {
  const serve = async (request: FastifyRequest, reply: FastifyReply) => {
    request.cacher.kind = 'toolchain';
    const found = await toolchains.open(request.url);
    recordOutcome(request, found.outcome, {
      upstreamBytes: found.upstreamBytes,
      // The top toolchains of the statistics count archives by release.
      ...(found.release && { crate: { name: 'rust', version: found.release } }),
    });
    reply
      .header('content-type', contentTypeOf(request.url))
      .header('cache-control', found.immutable ? IMMUTABLE : REVALIDATE)
      .header('x-cache-status', cacheStatusHeader(found.outcome));
    if (!found.stored) reply.header('x-cargo-cacher-not-stored', 'passed through');
    if (found.size !== undefined) reply.header('content-length', found.size);
    const { body } = found;
    if (body instanceof Readable || Buffer.isBuffer(body)) return reply.send(body);
    return sendPositional(request, reply, body);
  };
  app.get('/dist/*', serve);
  app.get('/rustup/*', serve);
}

/**
 * Sends a file read at positions, taken over from fastify (as the crate route's miss is): the
 * headers now, then the body through {@link pumpToResponse}'s two recycled buffers. buildApp's
 * 'close' listener still records the request.
 */
function sendPositional(
  request: FastifyRequest,
  reply: FastifyReply,
  file: PositionalBlob,
): FastifyReply {
  reply.hijack();
  const response = reply.raw;
  const writeHead = () => {
    request.cacher.ttfbMs ??= reply.elapsedTime;
    response.writeHead(200, reply.getHeaders() as OutgoingHttpHeaders);
  };
  if (request.method === 'HEAD') {
    writeHead();
    response.end();
    file.close().catch(() => undefined);
    return reply;
  }
  void pumpToResponse(file, response, {
    writeHead,
    failEarly: (err) => answerError(request, response, err),
  });
  return reply;
}

/** The error answer of a taken-over reply, in the shape the app's error handler gives. */
function answerError(request: FastifyRequest, response: FastifyReply['raw'], err: unknown): void {
  const error = err as { statusCode?: number; code?: string; message?: string };
  const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 502;
  request.cacher.outcome = 'error';
  if (error.code !== undefined) request.cacher.errorCode = error.code;
  const body = JSON.stringify({ errors: [{ detail: error.message, code: error.code }] });
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-cache-status': 'ERROR',
  });
  response.end(body);
}

/** What `/health` says of the rustup upstream. */
export interface ToolchainHealth {
  /** The upstream URL, or `none` (`--rustup-upstream none`, `--offline`). */
  upstream: string;
  /** Its circuit: `closed` while it answers, `open` while it is left alone after failures. */
  state: string;
  failures: number;
  lastError?: string;
  /** Downloads and revalidations under way. */
  inFlight: number;
}

/** The rustup upstream's state, from the circuits of every upstream (`rustup <host>` ones). */
export function toolchainHealth(
  toolchains: ToolchainCache | undefined,
  circuits: readonly { host: string; state: string; failures: number; lastError?: string }[],
): ToolchainHealth | { enabled: false } {
  if (!toolchains) return { enabled: false };
  const upstream = toolchains.upstream?.base;
  const circuit = upstream
    ? circuits.find((known) => known.host === `rustup ${new URL(upstream).host}`)
    : undefined;
  return {
    upstream: upstream ?? 'none',
    state: circuit?.state ?? 'closed',
    failures: circuit?.failures ?? 0,
    ...(circuit?.lastError !== undefined && { lastError: circuit.lastError }),
    inFlight: toolchains.inFlight,
  };
}

function contentTypeOf(url: string): string {
  const path = url.split('?')[0] ?? '';
  if (path.endsWith('.toml') || path.endsWith('.sha256') || path.endsWith('.asc')) {
    return 'text/plain; charset=utf-8';
  }
  if (path.endsWith('.gz')) return 'application/gzip';
  if (path.endsWith('.xz')) return 'application/x-xz';
  return 'application/octet-stream';
}
