/**
 * @module
 * Fetching `.crate` files from the upstream download source.
 */
import type { Readable } from 'node:stream';
import { Errors } from '../errors.ts';
import { parseRetryAfter } from './failover.ts';
import { discardBody, type HttpClient, headerValue, type UpstreamResponse } from './http-client.ts';

/** Opens the body of an upstream `.crate`. Anything but 200 is an error (cargo's own rule). */
export async function openCrateDownload(
  http: HttpClient,
  url: string,
  maxBytes: number,
): Promise<Readable> {
  return (await openCrateResponse(http, url, maxBytes)).body;
}

/** Like {@link openCrateDownload}, with upstream's headers. */
export async function openCrateResponse(
  http: HttpClient,
  url: string,
  maxBytes: number,
): Promise<UpstreamResponse> {
  const response = await http.get(url, { accept: '*/*' });
  if (response.status !== 200) {
    await discardBody(response.body);
    const { status } = response;
    const retryAfter =
      status === 429 || status === 503
        ? (parseRetryAfter(headerValue(response.headers, 'retry-after')) ?? 5)
        : undefined;
    throw Errors.CARGO_CACHER_UPSTREAM_STATUS(`upstream answered ${status} for ${url}`, {
      upstreamStatus: status,
      ...(retryAfter !== undefined && { retryAfter }),
    });
  }
  const length = Number(headerValue(response.headers, 'content-length'));
  if (Number.isFinite(length) && length > maxBytes) {
    response.body.destroy();
    throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
      `upstream crate ${url} is ${length} bytes, over the ${maxBytes}-byte limit (--max-crate-size)`,
    );
  }
  return response;
}
