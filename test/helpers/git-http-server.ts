/**
 * @module
 * Bare repositories served over git's smart HTTP by the real `git http-backend` (as CGI behind
 * a small node server), over HTTP or, given a certificate, HTTPS: an upstream git index that a
 * git mirror fetches over the network, through a proxy or a private CA.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { TestContext } from 'node:test';

/** One request the server answered. */
export interface GitHttpRequest {
  method: string;
  /** Path and query, e.g. `/upstream.git/info/refs?service=git-upload-pack`. */
  path: string;
  headers: IncomingHttpHeaders;
}

/** A running git HTTP server. */
export interface GitHttpServer {
  /** `http://127.0.0.1:PORT` (or `https://`): `<url>/<repo>.git` is a clone URL. */
  url: string;
  port: number;
  requests: GitHttpRequest[];
}

/**
 * Serves every repository under `root` (read-only: `git http-backend` refuses pushes without
 * authentication). Closed when `t` ends.
 */
export async function startGitHttpServer(
  t: TestContext,
  root: string,
  tls?: { cert: string | Buffer; key: string | Buffer },
): Promise<GitHttpServer> {
  const requests: GitHttpRequest[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers });
    serveCgi(req, res, root).catch(() => res.destroy());
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  const { port } = server.address() as AddressInfo;
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, port, requests };
}

/** Runs `git http-backend` for one request: CGI variables in, CGI headers and body out. */
async function serveCgi(req: IncomingMessage, res: ServerResponse, root: string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REMOTE_ADDR: '127.0.0.1',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['content-length'] && { CONTENT_LENGTH: req.headers['content-length'] }),
      ...(req.headers['content-encoding'] && {
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'],
      }),
      ...(typeof req.headers['git-protocol'] === 'string' && {
        GIT_PROTOCOL: req.headers['git-protocol'],
      }),
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const exited = once(child, 'close');
  const input = pipeline(req, child.stdin).catch(() => undefined);
  let head = Buffer.alloc(0);
  let headersSent = false;
  for await (const chunk of child.stdout) {
    if (headersSent) {
      if (!res.write(chunk)) await once(res, 'drain');
      continue;
    }
    head = Buffer.concat([head, chunk as Buffer]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) continue;
    writeCgiHeaders(res, head.subarray(0, end).toString('latin1'));
    headersSent = true;
    const rest = head.subarray(end + 4);
    if (rest.length > 0) res.write(rest);
  }
  if (!headersSent) res.writeHead(502);
  res.end();
  await input;
  await exited;
}

/** CGI headers: `Status: 404 Not Found` sets the status, the others are passed on. */
function writeCgiHeaders(res: ServerResponse, text: string): void {
  let status = 200;
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
    else res.setHeader(name, value);
  }
  res.writeHead(status);
}
