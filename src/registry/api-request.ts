/**
 * @module
 * The registry web API requests cargo-cacher answers through its cache (Cargo Book, "Registry
 * Web API": search; crates.io's crate metadata endpoints, read by cargo-deny, cargo-outdated and
 * IDEs): what a client sent, checked and normalised into an {@link ApiRequest}, its cache key,
 * its storage key and the path asked of upstream. Pure functions, no I/O. Only these shapes
 * exist, so nothing a client sends can name another path or host upstream.
 */
import { Errors } from '../errors.ts';
import { isValidCrateName } from './crate-name.ts';
import { isValidVersion } from './version.ts';

/** A search (`GET /api/v1/crates?q=…&per_page=…`), normalised. */
export interface SearchRequest {
  kind: 'search';
  /** Trimmed, inner whitespace collapsed, lowercased: crates.io's search ignores case. */
  query: string;
  perPage: number;
  page: number;
}

/** Crate metadata: `/api/v1/crates/{name}`, `…/versions`, `…/owners` (a read), `…/{version}`. */
export type MetadataRequest =
  | { kind: 'crate' | 'versions' | 'owners'; name: string }
  | { kind: 'version'; name: string; version: string };

/** A registry API read the cache answers. */
export type ApiRequest = SearchRequest | MetadataRequest;

/** cargo asks for 10 results unless `--limit` says otherwise; crates.io's default too. */
const DEFAULT_PER_PAGE = 10;
/** crates.io refuses more per page; cargo caps `--limit` at 100 itself. */
export const MAX_PER_PAGE = 100;
/** Pages past this are refused (crates.io limits deep offsets anyway). */
const MAX_PAGE = 1000;
/** Far longer than any crate name or phrase worth searching for. */
const MAX_QUERY_LENGTH = 200;

/** The query string of a search, as fastify parsed it (repeated keys give arrays). */
export type SearchParams = Record<string, string | string[] | undefined>;

/**
 * Checks and normalises a search. Only `q`, `per_page` and `page` are read (what cargo and the
 * Cargo Book use); any other parameter is left out of the upstream request and the cache key.
 */
export function parseSearch(params: SearchParams): SearchRequest {
  const q = single(params, 'q') ?? '';
  const query = q.trim().replace(/\s+/g, ' ').toLowerCase();
  if (query.length > MAX_QUERY_LENGTH) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`q is longer than ${MAX_QUERY_LENGTH} characters`);
  }
  const perPage = integerParam(params, 'per_page', DEFAULT_PER_PAGE, MAX_PER_PAGE);
  const page = integerParam(params, 'page', 1, MAX_PAGE);
  return { kind: 'search', query, perPage, page };
}

/**
 * Checks a metadata request's name and, for `/{name}/{version}`, its version: a bad one is a
 * 400 before anything is looked up.
 */
export function parseMetadata(
  name: string,
  what: 'crate' | 'versions' | 'owners' | { version: string },
): MetadataRequest {
  if (!isValidCrateName(name)) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`invalid crate name ${JSON.stringify(name)}`);
  }
  if (typeof what === 'string') return { kind: what, name };
  if (!isValidVersion(what.version)) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`invalid version ${JSON.stringify(what.version)}`);
  }
  return { kind: 'version', name, version: what.version };
}

/**
 * The key one answer is cached under. crates.io finds crates whatever the case of their name,
 * so `Serde` and `serde` share one.
 */
export function cacheKeyOf(request: ApiRequest): string {
  if (request.kind === 'search') return `search?${searchQuery(request)}`;
  const name = request.name.toLowerCase();
  return request.kind === 'version'
    ? `version/${name}/${request.version}`
    : `${request.kind}/${name}`;
}

/**
 * Where a metadata answer is kept in storage (the catalogue counts `api/` keys in its `other`
 * area); searches are kept in memory only, since every phrase anyone types would be a file.
 */
export function storageKeyOf(request: ApiRequest): string | undefined {
  if (request.kind === 'search') return undefined;
  const dir = `api/crates/${request.name.toLowerCase()}`;
  return request.kind === 'version'
    ? `${dir}/versions/${request.version}.json`
    : `${dir}/${request.kind}.json`;
}

/**
 * The path and query asked of upstream's API root (its `config.json` `api`). The name is as the
 * client sent it (crates.io canonicalises it), the version percent-encoded (`+` as `%2B`).
 */
export function upstreamPathOf(request: ApiRequest): string {
  const base = '/api/v1/crates';
  switch (request.kind) {
    case 'search':
      return `${base}?${searchQuery(request)}`;
    case 'crate':
      return `${base}/${request.name}`;
    case 'versions':
    case 'owners':
      return `${base}/${request.name}/${request.kind}`;
    case 'version':
      return `${base}/${request.name}/${encodeURIComponent(request.version)}`;
  }
}

/** A readable name for logs and errors: `search "serde json"`, `serde 1.0.0`. */
export function describeApiRequest(request: ApiRequest): string {
  switch (request.kind) {
    case 'search':
      return `search ${JSON.stringify(request.query)}`;
    case 'crate':
      return `crate ${request.name}`;
    case 'version':
      return `${request.name} ${request.version}`;
    default:
      return `${request.kind} of ${request.name}`;
  }
}

function searchQuery(request: SearchRequest): string {
  const query = new URLSearchParams({ q: request.query, per_page: String(request.perPage) });
  if (request.page !== 1) query.set('page', String(request.page));
  return query.toString();
}

function single(params: SearchParams, key: string): string | undefined {
  const value = params[key];
  if (Array.isArray(value)) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`${key} is given more than once`);
  }
  return value;
}

function integerParam(params: SearchParams, key: string, fallback: number, max: number): number {
  const raw = single(params, key);
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`${key} must be a whole number from 1 to ${max}`);
  }
  return Number(raw);
}
