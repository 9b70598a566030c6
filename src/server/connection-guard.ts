/**
 * @module
 * Connection caps and the deadlines Node's own server timers do not cover, so that one client
 * cannot hold every file descriptor or every byte of socket buffer (docs/RELIABILITY.md,
 * "Connection limits and timeouts").
 *
 * - **Admission.** Every TCP connection is counted against its client address (clientKeyOf) and
 *   the total. Past the per-address cap it is closed at once. At the total cap, a client holding
 *   fewer connections than the heaviest one still gets in: the heaviest client's oldest
 *   connection makes room. So a flood from one address never locks out another.
 * - **HTTP/1.1 readers that stopped reading.** Once a second the guard looks at each HTTP/1.1
 *   socket: bytes waiting to go out that have not moved for `sendTimeoutMs` mean the client
 *   stopped reading, and the connection is closed. A response still being prepared (a cold
 *   crate fetched upstream) has nothing waiting, so it is never cut. A sweep rather than
 *   Node's socket timeout: that one re-arms a timer on every request, which cost a third of
 *   the throughput of hot index requests. Idle keep-alive is Node's own `keepAliveTimeout`.
 * - **HTTP/2**, where one connection carries many streams: a stream whose response the client
 *   does not read is cancelled, a stream whose request body does not arrive in time is
 *   cancelled, and a session with no open stream is closed once idle.
 */
import { readFileSync } from 'node:fs';
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { type Server as NetServer, Socket } from 'node:net';
import type { ClientLimits } from '../config.ts';
import type { AppLogger } from '../logger.ts';
import type { ConnectionCounts, ConnectionEvent } from '../observe/records.ts';
import { clientKeyOf } from './client-address.ts';
import type { RawRequest } from './fast-index.ts';

/** The connection guard's limits, with the total cap already resolved. */
export type ResolvedClientLimits = ClientLimits & { maxConnections: number };

/** How often HTTP/1.1 sockets are checked for a stalled reader. */
const STALL_CHECK_INTERVAL_MS = 1_000;

/** What the last stall check saw of a socket's output. */
interface OutputProgress {
  pending: number;
  written: number;
  /** Since when `pending` and `written` have not changed while bytes were waiting. */
  since: number;
}
/** Per HTTP/2 session: how many streams are open. */
const openStreams = new WeakMap<Http2Session, number>();

/** Counts and caps client connections, and applies the deadlines of one server. */
export class ConnectionGuard {
  readonly limits: ResolvedClientLimits;
  readonly #log: AppLogger | undefined;
  readonly #byClient = new Map<string, Set<Socket>>();
  /** HTTP/1.1 sockets (TLS ones included) that carried a request, with their output seen. */
  readonly #http1 = new Map<Socket, OutputProgress>();
  #open = 0;
  readonly #events: Record<ConnectionEvent, number> = {
    refused_per_ip: 0,
    refused_total: 0,
    evicted: 0,
    send_timeout: 0,
    idle_timeout: 0,
    body_timeout: 0,
  };
  #lastRefusalLogAt = Number.NEGATIVE_INFINITY;

  constructor(limits: ResolvedClientLimits, log?: AppLogger) {
    this.limits = limits;
    this.#log = log;
  }

  /** The counts /metrics shows. */
  counts(): ConnectionCounts {
    return {
      open: this.#open,
      maxConnections: this.limits.maxConnections,
      maxConnectionsPerIp: this.limits.maxConnectionsPerIp,
      events: { ...this.#events },
    };
  }

  /**
   * Applies admission to every TCP connection the server accepts (before TLS), and the timeout
   * rules to its HTTP/1.1 sockets and HTTP/2 sessions.
   */
  attach(server: NetServer): void {
    server.on('connection', (socket: Socket) => this.#admit(socket));
    // Node times an HTTP/1.1 socket out only while it waits for the next request on a kept-alive
    // connection (`keepAliveTimeout`): closed here as Node would, and counted.
    server.on('timeout', (target: unknown) => {
      if (!(target instanceof Socket)) return;
      this.#events.idle_timeout += 1;
      target.destroy();
    });
    server.on('session', (session: Http2Session) => this.#watchSession(session));
    server.on('stream', (stream: ServerHttp2Stream) => this.#watchStream(stream));
    const sweep = setInterval(() => this.#closeStalledReaders(Date.now()), STALL_CHECK_INTERVAL_MS);
    sweep.unref();
    server.once('close', () => clearInterval(sweep));
  }

  /** Called for every HTTP/1.1 request: its socket is watched for a stalled reader. */
  onHttp1Request(request: RawRequest): void {
    const socket = request.socket as Socket;
    if (this.#http1.has(socket)) return;
    this.#http1.set(socket, { pending: 0, written: 0, since: 0 });
    socket.once('close', () => this.#http1.delete(socket));
  }

  /** Closes HTTP/1.1 connections whose waiting output has not moved for the send timeout. */
  #closeStalledReaders(now: number): void {
    for (const [socket, seen] of this.#http1) {
      const pending = socket.writableLength;
      const written = socket.bytesWritten;
      if (pending === 0 || pending !== seen.pending || written !== seen.written) {
        seen.pending = pending;
        seen.written = written;
        seen.since = now;
      } else if (now - seen.since >= this.limits.sendTimeoutMs) {
        this.#events.send_timeout += 1;
        socket.destroy();
      }
    }
  }

  #admit(socket: Socket): void {
    const client = clientKeyOf(socket.remoteAddress);
    let held = this.#byClient.get(client);
    if ((held?.size ?? 0) >= this.limits.maxConnectionsPerIp) {
      this.#refuse(socket, 'refused_per_ip', client);
      return;
    }
    if (this.#open >= this.limits.maxConnections && !this.#makeRoomFor(client)) {
      this.#refuse(socket, 'refused_total', client);
      return;
    }
    if (!held) {
      held = new Set();
      this.#byClient.set(client, held);
    }
    held.add(socket);
    this.#open += 1;
    socket.once('close', () => {
      this.#open -= 1;
      held.delete(socket);
      if (held.size === 0 && this.#byClient.get(client) === held) this.#byClient.delete(client);
    });
  }

  /**
   * At the total cap: closes the oldest connection of the client holding the most, if that
   * client holds more than `client` does. Returns false when `client` is itself the heaviest.
   */
  #makeRoomFor(client: string): boolean {
    const mine = this.#byClient.get(client)?.size ?? 0;
    let heaviest: Set<Socket> | undefined;
    for (const held of this.#byClient.values()) {
      if (!heaviest || held.size > heaviest.size) heaviest = held;
    }
    if (!heaviest || heaviest.size <= mine + 1) return false;
    const oldest = heaviest.values().next().value;
    if (!oldest) return false;
    this.#events.evicted += 1;
    // Counted as closed now: its 'close' event comes later, and the newcomer takes its place.
    oldest.destroy();
    return true;
  }

  #refuse(socket: Socket, event: ConnectionEvent, client: string): void {
    this.#events[event] += 1;
    socket.destroy();
    // One line a minute at most: a flood must not flood the log too.
    const now = Date.now();
    if (now - this.#lastRefusalLogAt < 60_000) return;
    this.#lastRefusalLogAt = now;
    this.#log?.warn(
      { client, event, open: this.#open, ...this.counts().events },
      event === 'refused_per_ip'
        ? `refusing connections from ${client}: it holds ${this.limits.maxConnectionsPerIp} (--max-connections-per-ip); logged once a minute`
        : `refusing connections: ${this.limits.maxConnections} open (--max-connections); logged once a minute`,
    );
  }

  #watchSession(session: Http2Session): void {
    openStreams.set(session, 0);
    session.setTimeout(this.limits.idleTimeoutMs, () => {
      if ((openStreams.get(session) ?? 0) > 0) return;
      this.#events.idle_timeout += 1;
      session.close();
    });
  }

  #watchStream(stream: ServerHttp2Stream): void {
    const session = stream.session;
    if (session) openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
    // Node emits a stream's 'timeout' only while its writes make no progress.
    stream.setTimeout(this.limits.sendTimeoutMs, () => {
      if (stream.writableLength === 0) return;
      this.#events.send_timeout += 1;
      stream.close(constants.NGHTTP2_CANCEL);
    });
    // A request with a body must deliver it within the request timeout.
    const deadline = stream.endAfterHeaders
      ? undefined
      : setTimeout(() => {
          if (stream.destroyed || stream.state.remoteClose) return;
          this.#events.body_timeout += 1;
          stream.close(constants.NGHTTP2_CANCEL);
        }, this.limits.requestTimeoutMs).unref();
    stream.once('close', () => {
      if (session) openStreams.set(session, (openStreams.get(session) ?? 1) - 1);
      clearTimeout(deadline);
    });
  }
}

/**
 * The total connection cap for an open-files limit: every connection may hold one more
 * descriptor (the file it streams, or the upstream socket of a miss), and the rest is kept for
 * storage, upstream pools, the git mirror and SQLite.
 */
export function connectionCapFor(openFilesLimit: number): number {
  const reserved = Math.min(256, Math.floor(openFilesLimit / 4));
  return Math.max(16, Math.floor((openFilesLimit - reserved) / 2));
}

/** The soft open-files limit of this process (`ulimit -n`), or `undefined` where unknown. */
export function readOpenFilesLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    // Not Linux: no cheap way to ask, and the default of most systems is large enough.
    return undefined;
  }
}

/** The limits with the total cap resolved from the open-files limit when not given. */
export function resolveClientLimits(
  limits: ClientLimits,
  openFilesLimit: number | undefined = readOpenFilesLimit(),
): ResolvedClientLimits {
  const maxConnections =
    limits.maxConnections ?? connectionCapFor(Math.min(openFilesLimit ?? 65_536, 1_048_576));
  return { ...limits, maxConnections };
}
