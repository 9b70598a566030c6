/**
 * @module
 * A bare HTTP GET for tests that must see exactly what went over the wire: no redirects followed,
 * no decoding, no pooled sockets, and truncated bodies reported instead of thrown.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:http';

/** What {@link httpGet} saw. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** False when the connection ended before the whole body (per Content-Length) arrived. */
  complete: boolean;
}

/**
 * GETs `url` on a fresh connection (`agent: false`, so a server restart never meets a stale
 * pooled socket). Rejects only when no response arrives at all, e.g. connection refused or a
 * socket destroyed before the headers.
 */
export function httpGet(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawResponse> {
  return send(url, { method, headers });
}

/**
 * Like {@link httpGet}, but sends `rawPath` exactly as given: `new URL` would resolve `..` and
 * `%2e%2e` before they ever reached the server, which hides what traversal tests are about.
 */
export function httpGetRawPath(
  baseUrl: string,
  rawPath: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawResponse> {
  return send(baseUrl, { method, headers, path: rawPath });
}

function send(
  url: string,
  options: { method: string; headers: Record<string, string>; path?: string },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...options, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      // An aborted body emits 'error' as well as 'close'; 'close' reports it via `complete`.
      res.on('error', () => undefined);
      res.on('close', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          complete: res.complete,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
