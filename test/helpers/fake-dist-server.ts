/**
 * @module
 * Serves a {@link FakeDistTree} over HTTP on 127.0.0.1, as static.rust-lang.org would: GET of a
 * known path answers 200 with its bytes, anything else 404. It counts requests per path and can
 * misbehave: an archive served corrupted (one byte flipped, its `.sha256` and the manifest
 * unchanged), or the whole server down (every connection reset). Files can also be backed by a
 * file on disk (the benchmark's 500 MB archive), streamed.
 */
import { createReadStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { FakeDistTree } from './fake-dist.ts';

/** A running fake dist server. */
export interface FakeDistServer {
  /** `http://127.0.0.1:PORT`: what `RUSTUP_DIST_SERVER` or `--rustup-upstream` points at. */
  url: string;
  /** Every request path, in arrival order. */
  readonly requests: string[];
  /** Requests for `path`, or for every path when none is given. */
  count(path?: string): number;
  /** Forgets the requests so far. */
  resetCounts(): void;
  /** Serves `path` with one byte flipped (same length) until {@link heal}. */
  corrupt(path: string): void;
  heal(): void;
  /** Resets every connection until {@link up}: an upstream that is down. */
  down(): void;
  up(): void;
  /** Serves `path` from a file on disk, streamed. */
  serveFile(path: string, file: string, size: number): void;
  close(): Promise<void>;
}

/** Starts a server for `tree` (which may still change: files are looked up per request). */
export async function startFakeDistServer(tree: FakeDistTree): Promise<FakeDistServer> {
  const requests: string[] = [];
  const corrupted = new Set<string>();
  const onDisk = new Map<string, { file: string; size: number }>();
  const sockets = new Set<Socket>();
  let isDown = false;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push(path);
    if (isDown) {
      req.socket.destroy();
      return;
    }
    const disk = req.method === 'GET' ? onDisk.get(path) : undefined;
    if (disk) {
      res.writeHead(200, { 'content-length': disk.size, 'content-type': 'application/x-tar' });
      pipeline(createReadStream(disk.file), res).catch(() => res.destroy());
      return;
    }
    const body = req.method === 'GET' ? tree.files.get(path) : undefined;
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const sent = corrupted.has(path) ? flipOneByte(body) : body;
    res.writeHead(200, { 'content-length': sent.length, 'content-type': contentTypeOf(path) });
    res.end(sent);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count: (path) =>
      path === undefined ? requests.length : requests.filter((p) => p === path).length,
    resetCounts: () => {
      requests.length = 0;
    },
    corrupt: (path) => corrupted.add(path),
    heal: () => corrupted.clear(),
    down: () => {
      isDown = true;
      for (const socket of sockets) socket.destroy();
    },
    up: () => {
      isDown = false;
    },
    serveFile: (path, file, size) => onDisk.set(path, { file, size }),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function contentTypeOf(path: string): string {
  if (path.endsWith('.toml')) return 'text/plain';
  if (path.endsWith('.sha256')) return 'text/plain';
  return 'application/octet-stream';
}

function flipOneByte(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const at = Math.floor(copy.length / 2);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}
