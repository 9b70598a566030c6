/**
 * @module
 * Fetching `.crate` files from the upstream download source.
 */
import type { Readable } from 'node:stream';
import { Errors } from '../errors.ts';
import { discardBody, type HttpClient, headerValue } from './http-client.ts';

/** Opens the body of an upstream `.crate`. Anything but 200 is an error (cargo's own rule). */
export async function openCrateDownload(
  http: HttpClient,
  url: string,
  maxBytes: number,
): Promise<Readable> {
  const response = await http.get(url, { accept: '*/*' });
  if (response.status !== 200) {
    await discardBody(response.body);
    throw Errors.CARGO_CACHER_UPSTREAM_STATUS(
      `upstream answered ${response.status} for ${url}`,
      response.status === 429 || response.status === 503
        ? { retryAfter: Number(headerValue(response.headers, 'retry-after')) || 5 }
        : undefined,
    );
  }
  const length = Number(headerValue(response.headers, 'content-length'));
  if (Number.isFinite(length) && length > maxBytes) {
    response.body.destroy();
    throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
      `upstream crate ${url} is ${length} bytes, over the ${maxBytes}-byte limit`,
    );
  }
  return response.body;
}
