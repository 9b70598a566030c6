/**
 * @module
 * A network link between cargo and the server under test: a TCP relay on 127.0.0.1 that holds
 * every chunk for half the round-trip time in each direction, in order. TLS passes through it
 * untouched. On loopback a request costs microseconds, so how many round trips a client waits
 * for (one request at a time over HTTP/1.1, many at once over HTTP/2) only shows with a link
 * that has latency, as between a build machine and a cache in the next building or region.
 * TCP's own handshake is not delayed (it happens on loopback), which favours clients that open
 * more connections.
 */
import { connect, createServer, type Socket } from 'node:net';

/** A running relay. */
export interface Link {
  port: number;
  close(): Promise<void>;
}

/** Copies `from` to `to`, each chunk (and the end) `delayMs` later; timers of one delay fire in order. */
function relay(from: Socket, to: Socket, delayMs: number): void {
  from.on('data', (chunk: Buffer) => {
    setTimeout(() => to.write(chunk), delayMs);
  });
  from.on('end', () => {
    setTimeout(() => to.end(), delayMs);
  });
}

/** Starts a relay to `targetPort` on 127.0.0.1 with the given round-trip time. */
export async function startLink(targetPort: number, rttMs: number): Promise<Link> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const target = connect(targetPort, '127.0.0.1');
    for (const socket of [client, target]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => {
        client.destroy();
        target.destroy();
      });
      socket.on('close', () => sockets.delete(socket));
    }
    relay(client, target, rttMs / 2);
    relay(target, client, rttMs / 2);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('link: no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
