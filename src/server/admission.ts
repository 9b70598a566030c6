/**
 * @module
 * Admission: whether a request may be answered at all, decided once for both ways in (the fast
 * path for hot index files and fastify's `onRequest` hook). A server that is closing takes no
 * new request; with `--auth-token-file`, every request but `/health` needs a valid token, and
 * changing requests an admin one (auth.ts).
 *
 * The fast path answers only admitted requests and leaves every refusal to fastify, so each
 * refusal has one answer, written here: 503 while closing (fastify's own answer, which its
 * router gives matched routes before any hook runs), 401 with the login challenge, 403.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { Errors } from '../errors.ts';
import { challenge, needsAdmin, roleOfHeader, type TokenTable } from './auth.ts';

/** What admission checks against; read on every request, so it may change in place. */
export interface AdmissionGate {
  /** The token table when `--auth-token-file` is set. */
  tokens: TokenTable | undefined;
  /** True once the server is closing. */
  closing: () => boolean;
}

/** The verdict on a request. */
export type Admission = 'admitted' | 'closing' | 'unauthorized' | 'forbidden';

/** Decides whether a request may be answered; see the module comment. */
export function admissionOf(
  gate: AdmissionGate,
  method: string,
  url: string,
  authorization: string | undefined,
): Admission {
  if (gate.closing()) return 'closing';
  const tokens = gate.tokens;
  if (tokens === undefined || url === '/health' || url.startsWith('/health?')) return 'admitted';
  const role = roleOfHeader(tokens, authorization);
  if (role === undefined) return 'unauthorized';
  return role !== 'admin' && needsAdmin(method, url) ? 'forbidden' : 'admitted';
}

/** Fastify's answer while closing, byte for byte (its `return503OnClosing`). */
const CLOSING_BODY =
  '{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}';

/**
 * Answers a refused request from a callback-style `onRequest` hook: 503 while closing, else an
 * error for the error handler (cargo's JSON error shape), with the login challenge on a 401.
 */
export function refuse(
  verdict: Exclude<Admission, 'admitted'>,
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
  configuredPublicUrl: string | undefined,
): void {
  switch (verdict) {
    case 'closing':
      // fastify's router answers this way before any hook for a matched route; only a request
      // for an unknown path still arrives here.
      if (request.raw.httpVersionMajor !== 2) reply.header('connection', 'close');
      reply.code(503).type('application/json').send(CLOSING_BODY);
      return;
    case 'unauthorized':
      challenge(request, reply, configuredPublicUrl);
      done(
        Errors.CARGO_CACHER_UNAUTHORIZED(
          request.headers.authorization !== undefined
            ? 'the token sent is not valid for this proxy; check the registry token'
            : 'this proxy requires a token: set one for the registry (for example ' +
                'CARGO_REGISTRIES_<NAME>_TOKEN) with registry.global-credential-providers = ["cargo:token"]',
        ),
      );
      return;
    case 'forbidden':
      done(Errors.CARGO_CACHER_FORBIDDEN(`${request.method} ${request.url} needs an admin token`));
      return;
  }
}
