/**
 * @module
 * Raw TCP and TLS clients for tests that misbehave on purpose (slow headers, slow bodies,
 * readers that never read) or need to see exactly when the server closes a connection. Each can
 * bind a chosen loopback address (127.0.0.2, …), so per-address limits are tested apart from a
 * well-behaved client on 127.0.0.1.
 */
import { once } from 'node:events';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

/** How to open a raw connection. */
export interface RawConnectOptions {
  /** Local address to bind, e.g. `127.0.0.2`. */
  localAddress?: string;
  /** Speak TLS (any certificate is accepted), offering these ALPN protocols. */
  tls?: { alpn: string[] };
}

/** A raw connection and what it has received so far. */
export interface RawConnection {
  socket: Socket;
  /** Everything received, as latin1 text. */
  received(): string;
  /** Resolves when the server closed the connection (or it failed), with ms since opening. */
  closed: Promise<number>;
}

/** Opens a connection to the host and port of `url` and starts recording what comes back. */
export async function openRaw(
  url: string,
  options: RawConnectOptions = {},
): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const target = { host: hostname, port: Number(port), localAddress: options.localAddress };
  const socket = options.tls
    ? connectTls({ ...target, rejectUnauthorized: false, ALPNProtocols: options.tls.alpn })
    : connectTcp(target);
  const opened = Date.now();
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
  });
  const closed = new Promise<number>((resolve) => {
    socket.once('close', () => resolve(Date.now() - opened));
  });
  socket.on('error', () => undefined);
  await once(socket, options.tls ? 'secureConnect' : 'connect');
  return { socket, received: () => text, closed };
}

/** Waits until what was received matches `pattern`; fails after `ms`. */
export async function receive(conn: RawConnection, pattern: RegExp, ms = 5_000): Promise<string> {
  const deadline = Date.now() + ms;
  while (!pattern.test(conn.received())) {
    const arrived = once(conn.socket, 'data').then(() => true);
    if (Date.now() > deadline || !(await settlesWithin(arrived, deadline - Date.now()))) {
      throw new Error(
        `nothing matching ${pattern} arrived; got ${JSON.stringify(conn.received())}`,
      );
    }
  }
  return conn.received();
}

/** Resolves `true` once `promise` settles, or `false` after `ms` (the test then fails). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
