/**
 * @module
 * HTTP validators and content coding for cached responses: ETag/Last-Modified matching and
 * gzip for clients that accept it.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { LruMap } from '../cache/lru.ts';

const gzipAsync = promisify(gzip);

/**
 * True when the client's conditional headers match. RFC 9110 §13.1.2: If-None-Match uses the
 * weak comparison, and when it is present If-Modified-Since is ignored. The gzip variant's tag
 * (`"x-gz"`) matches its identity tag (`"x"`): both name the same content.
 */
export function isNotModified(
  headers: { 'if-none-match'?: string; 'if-modified-since'?: string },
  etag: string,
  lastModified: string | undefined,
): boolean {
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    // What cargo sends: the ETag it got, unchanged. The parsing below handles lists and W/.
    if (ifNoneMatch === etag) return true;
    if (ifNoneMatch.trim() === '*') return true;
    const wanted = opaque(etag);
    return ifNoneMatch.split(',').some((tag) => opaque(tag) === wanted);
  }
  const since = headers['if-modified-since'];
  if (since === undefined || lastModified === undefined) return false;
  const sinceMs = Date.parse(since);
  const modifiedMs = Date.parse(lastModified);
  return Number.isFinite(sinceMs) && Number.isFinite(modifiedMs) && modifiedMs <= sinceMs;
}

function opaque(tag: string): string {
  return tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '').replace(/-gz$/, '');
}

/** The ETag of the gzip variant of a representation. */
export function gzipEtag(etag: string): string {
  return etag.replace(/"$/, '-gz"');
}

/** True when `Accept-Encoding` allows gzip (q=0 excluded). */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (!acceptEncoding) return false;
  return acceptEncoding.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== 'x-gzip') return false;
    const q = params.find((p) => p.trim().startsWith('q='));
    return q === undefined || Number(q.trim().slice(2)) > 0;
  });
}

/** Bodies smaller than this are sent as they are: gzip would not pay for its header. */
const MIN_GZIP_BYTES = 512;

/** Gzips bodies once per ETag and keeps the result, bounded by bytes. */
export class GzipCache {
  readonly #entries = new LruMap<string, Buffer>(32 * 1024 * 1024, (body) => body.length);

  /** The gzip of `body`, or `undefined` when it is too small to be worth compressing. */
  async compress(etag: string, body: Buffer): Promise<Buffer | undefined> {
    const ready = this.ready(etag, body);
    if (ready !== undefined) return ready ?? undefined;
    const compressed = await gzipAsync(body);
    this.#entries.set(etag, compressed);
    return compressed;
  }

  /**
   * What {@link compress} would give without doing any work: the kept gzip, `null` when the
   * body is too small to compress, `undefined` when it has not been compressed yet.
   */
  ready(etag: string, body: Buffer): Buffer | null | undefined {
    if (body.length < MIN_GZIP_BYTES) return null;
    return this.#entries.get(etag);
  }
}
