/**
 * @module
 * Optional access control (`--auth-token-file`). The file holds one token per line with its
 * role, `<token> read` or `<token> admin`, and `#` comments. With it, every request but
 * `/health` needs a token: cargo sends it raw in `Authorization` once the served config.json
 * says `"auth-required": true` (Cargo Book, registry-index, "Sparse authentication"); git and
 * browsers send it as the password of Basic authentication; Prometheus as `Bearer <token>`.
 * Changing requests (prefetch, any other POST but git's fetch) need an `admin` token. The check
 * itself runs in admission.ts, for the fast path and fastify alike.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Errors } from '../errors.ts';
import { publicUrlFor } from './public-url.ts';

/** What a token may do. */
export type TokenRole = 'read' | 'admin';

/** The tokens of the token file, kept only as sha256 digests. */
export interface TokenTable {
  entries: { digest: Buffer; role: TokenRole }[];
}

/** Reads and checks a token file; a bad line fails startup with its line number. */
export function loadTokenFile(path: string): TokenTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `cannot read --auth-token-file ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return parseTokenFile(text, path);
}

/** Parses the token file format; see the module comment. */
export function parseTokenFile(text: string, path = 'token file'): TokenTable {
  const entries: TokenTable['entries'] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const parts = line.split(/\s+/);
    const [token, role] = parts;
    if (parts.length !== 2 || token === undefined || (role !== 'read' && role !== 'admin')) {
      // The line is not echoed: it may hold a token.
      throw Errors.CARGO_CACHER_INVALID_CONFIG(
        `${path} line ${index + 1}: expected "<token> read" or "<token> admin"`,
      );
    }
    entries.push({ digest: digestOf(token), role });
  });
  if (entries.length === 0) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`${path} holds no token: nobody could use the proxy`);
  }
  return { entries };
}

/**
 * The role of a presented token, or `undefined`. Every entry is compared, each in constant time
 * over fixed-length digests, so timing tells nothing about which token or how much matched.
 */
export function roleOf(table: TokenTable, token: string): TokenRole | undefined {
  const digest = digestOf(token);
  let role: TokenRole | undefined;
  for (const entry of table.entries) {
    if (timingSafeEqual(entry.digest, digest) && role !== 'admin') role = entry.role;
  }
  return role;
}

/** The strongest role among the tokens an `Authorization` header carries, or `undefined`. */
export function roleOfHeader(
  table: TokenTable,
  authorization: string | undefined,
): TokenRole | undefined {
  const roles = tokensOf(authorization).map((token) => roleOf(table, token));
  return roles.includes('admin') ? 'admin' : roles.find((found) => found === 'read');
}

/** The token candidates in an `Authorization` header: raw (cargo), Bearer, or Basic. */
export function tokensOf(authorization: string | undefined): string[] {
  if (authorization === undefined || authorization.trim() === '') return [];
  const value = authorization.trim();
  const [scheme, ...rest] = value.split(/\s+/);
  const credentials = rest.join(' ');
  if (/^bearer$/i.test(scheme ?? '') && credentials !== '') return [credentials];
  if (/^basic$/i.test(scheme ?? '') && credentials !== '') {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // git sends the token as the password; some tools put it in the user name.
    return colon < 0 ? [decoded] : [decoded.slice(colon + 1), decoded.slice(0, colon)];
  }
  return [value];
}

/** Git's smart-HTTP paths: git answers a Basic challenge by asking for credentials. */
const GIT_PATHS = /^\/index\/(?:info\/refs|git-upload-pack|git-receive-pack)(?:\?|$)/;

/**
 * Changing requests: anything but a read, except git's fetch negotiation (a POST) and cargo's
 * registry writes (publish, yank, owners), which change nothing here: any valid token gets their
 * 405 saying this is a cache, rather than a 403 that suggests an admin token would publish.
 */
export function needsAdmin(method: string, url: string): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  if (isRegistryWrite(url)) return false;
  return !(method === 'POST' && url.startsWith('/index/git-upload-pack'));
}

/**
 * A path of cargo's registry API, answered 405 for any write (routes/registry-api.ts); one with
 * dot segments is not taken for one, whatever a router would make of it.
 */
function isRegistryWrite(url: string): boolean {
  const path = url.split('?')[0] ?? url;
  return /^\/api\/v1\/crates(?:\/|$)/.test(path) && !/\.\.|%2e/i.test(path);
}

/** Sets the `WWW-Authenticate` challenge of a 401: cargo's login URL, and Basic for git. */
export function challenge(
  request: FastifyRequest,
  reply: FastifyReply,
  configuredPublicUrl: string | undefined,
): void {
  let publicUrl = '';
  try {
    publicUrl = publicUrlFor(request, configuredPublicUrl);
  } catch {
    // A malformed Host: the challenge goes out without a login URL.
  }
  // cargo reads `login_url` from this header on a 401 for config.json and retries with a token.
  const cargo = `Cargo login_url="${publicUrl}/"`;
  const basic = 'Basic realm="cargo-cacher", charset="UTF-8"';
  const isCargoPath =
    (request.url.startsWith('/index/') && !GIT_PATHS.test(request.url)) ||
    request.url.startsWith('/api/v1/crates');
  reply.header('www-authenticate', isCargoPath ? cargo : [cargo, basic]);
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
