/**
 * @module
 * HTTP validators and content coding for cached responses: ETag/Last-Modified matching, the
 * ETag of a gzip variant, and whether a client accepts gzip. The variants themselves are kept by
 * cache/index-variants.ts.
 */

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
