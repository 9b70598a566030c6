/**
 * @module
 * The git index at the same `/index` URL as the sparse index: `GET /index/info/refs` and
 * `POST /index/git-upload-pack`. Git's paths never collide with sparse ones (`info/refs` is
 * not an index path: a 4-letter name lives at `in/fo/info`). Pushing is refused.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Errors, isCacherError } from '../../errors.ts';
import { killGitGroup } from '../../git/git-command.ts';
import type { GitMirror } from '../../git/git-mirror.ts';
import {
  ADVERTISEMENT_TYPE,
  advertiseRefs,
  gitProtocolEnv,
  REQUEST_TYPE,
  RESULT_TYPE,
  startUploadPack,
} from '../../git/upload-pack.ts';
import { createByteLimit } from '../byte-limit.ts';
import { recordOutcome } from '../request-context.ts';

/** Negotiation bodies are wants and haves: a few MB at most even for a large index. */
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** http-protocol.txt: advertisement and results must not be cached by intermediaries. */
const NO_CACHE = 'no-cache, max-age=0, must-revalidate';

/** Registers the git smart-HTTP routes; without a mirror they answer 404. */
export function registerGitRoutes(app: FastifyInstance, mirror: GitMirror | undefined): void {
  app.addContentTypeParser(REQUEST_TYPE, (_request, payload, done) => done(null, payload));

  app.get<{ Querystring: { service?: string } }>(
    '/index/info/refs',
    async function infoRefs(request, reply) {
      const ready = requireMirror(request, mirror);
      if (request.query.service !== 'git-upload-pack') {
        throw Errors.CARGO_CACHER_FORBIDDEN(
          'only git-upload-pack (fetch) is served; this index is read-only',
        );
      }
      const body = await advertiseRefs(
        ready.gitDir,
        gitProtocolEnv(request.headers['git-protocol']),
      );
      recordOutcome(request, 'hit');
      return reply
        .header('content-type', ADVERTISEMENT_TYPE)
        .header('cache-control', NO_CACHE)
        .send(body);
    },
  );

  app.post('/index/git-upload-pack', async function uploadPack(request, reply) {
    const ready = requireMirror(request, mirror);
    if (request.headers['content-type'] !== REQUEST_TYPE) {
      throw Errors.CARGO_CACHER_BAD_REQUEST(`git-upload-pack needs Content-Type ${REQUEST_TYPE}`);
    }
    if (Number(request.headers['content-length'] ?? 0) > MAX_REQUEST_BYTES) {
      throw Errors.CARGO_CACHER_BODY_TOO_LARGE(`body exceeds ${MAX_REQUEST_BYTES} bytes`);
    }
    recordOutcome(request, 'hit');
    return streamUploadPack(request, reply, ready.gitDir);
  });

  // Refused in onRequest, before body parsing: a push's own content type has no parser (415).
  app.post('/index/git-receive-pack', {
    onRequest: async function refusePush(request) {
      request.cacher.kind = 'git';
      throw Errors.CARGO_CACHER_FORBIDDEN('pushing to the cargo-cacher index is not allowed');
    },
    handler: async function unreachable() {},
  });
}

function requireMirror(request: FastifyRequest, mirror: GitMirror | undefined): GitMirror {
  request.cacher.kind = 'git';
  if (!mirror) throw Errors.CARGO_CACHER_GIT_DISABLED('the git index is not served (--no-git)');
  if (!mirror.ready) {
    throw Errors.CARGO_CACHER_GIT_NOT_READY('the git index is still being cloned; retry shortly', {
      retryAfter: 10,
    });
  }
  return mirror;
}

/**
 * Pipes the (possibly gzipped) request body into upload-pack and its output to the client.
 * The child is killed when the client goes away, so no git process outlives its request.
 */
function streamUploadPack(request: FastifyRequest, reply: FastifyReply, gitDir: string) {
  const child = startUploadPack(gitDir, gitProtocolEnv(request.headers['git-protocol']));
  const stdin = child.stdin as NonNullable<typeof child.stdin>;
  const stdout = child.stdout as Readable;
  const kill = () => killGitGroup(child);
  reply.raw.on('close', kill);
  child.stderr?.resume();
  const body = request.body as Readable;
  // The limit applies after gunzip, so a small compressed body cannot expand without bound.
  const limit = createByteLimit(MAX_REQUEST_BYTES);
  const feeding =
    request.headers['content-encoding'] === 'gzip'
      ? pipeline(body, createGunzip(), limit, stdin)
      : pipeline(body, limit, stdin);
  feeding.catch((err: unknown) => {
    request.log.debug({ err }, 'git-upload-pack request body aborted');
    kill();
    // Before any answer went out, a too-large or undecodable body gets its own 4xx instead of
    // an empty 200 (fastify answers with the error when the stream fails before its first byte).
    const failure = bodyError(err);
    if (failure && !reply.raw.headersSent) stdout.destroy(failure);
  });
  return reply.header('content-type', RESULT_TYPE).header('cache-control', NO_CACHE).send(stdout);
}

/** The client's fault in a failed request body (too large, bad gzip), or `undefined`. */
function bodyError(err: unknown): Error | undefined {
  if (isCacherError(err)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return Errors.CARGO_CACHER_BAD_REQUEST('git-upload-pack request body is not valid gzip');
  }
  return undefined;
}
