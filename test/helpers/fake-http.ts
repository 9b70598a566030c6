/**
 * @module
 * Responses of the fake upstream and the faults that can spoil them. A route builds a
 * {@link Reply}; {@link sendReply} writes it, applying body-level faults on the way out.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IndexFile } from './fake-registry.ts';

/** A misbehaviour the fake upstream can be told to show. */
export type Fault =
  /** Answer every matching request with this status (and `Retry-After` seconds if given). */
  | { kind: 'status'; status: number; retryAfter?: number }
  /** Wait this long before sending the headers. */
  | { kind: 'slow'; delayMs: number }
  /** Correct headers, including Content-Length, then half the body, then a destroyed socket. */
  | { kind: 'truncated' }
  /** Crate bytes with one byte flipped, same length; index files are unaffected. */
  | { kind: 'corrupt' }
  /** Never answer (until the upstream stops). */
  | { kind: 'hang' }
  /** Close the connection without any answer (a reset before the headers). */
  | { kind: 'reset' }
  /**
   * Send the headers and half the body, then the rest once the test opens `gate`: a gate never
   * opened is an upstream whose body stalls (the socket stays open).
   */
  | { kind: 'gate'; gate: Gate }
  /** 200 with `bytes` of zeros: with `Content-Length`, or chunked when `chunked` is set. */
  | { kind: 'huge'; bytes: number; chunked?: boolean };

/**
 * Holds upstream responses part-way until the test opens it. A test whose precondition is "a
 * download is under way" holds the download at a gate instead of guessing how long it lasts:
 * it waits for {@link Gate.arrived} (the response sent its headers and the first half of its
 * body), checks what it needs while nothing can move on, then calls {@link Gate.open}.
 */
export class Gate {
  #open = false;
  #allowance = 0;
  #arrivals = 0;
  readonly #releases: (() => void)[] = [];
  readonly #waiters = new Set<{ count: number; resolve: () => void }>();

  /** Responses that have reached the gate so far, held or already released. */
  get arrivals(): number {
    return this.#arrivals;
  }

  /**
   * Resolves once `count` responses have reached the gate. Rejects after `timeoutMs`: a bound
   * on a broken test, not a guess at how long a download takes.
   */
  arrived(count = 1, timeoutMs = 30_000): Promise<void> {
    if (this.#arrivals >= count) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`${this.#arrivals} of ${count} responses reached the gate`));
      }, timeoutMs);
      // A wait that lost a race (Promise.race) must not keep the test process alive.
      timer.unref();
      this.#waiters.add(waiter);
    });
  }

  /** Lets every held response finish; later ones pass straight through. */
  open(): void {
    this.#open = true;
    this.#releaseHeld();
  }

  /**
   * Lets `count` more responses through, those held first, then the next to arrive; the ones
   * after them are held again. A test stops a job at a known point this way.
   */
  pass(count: number): void {
    this.#allowance += count;
    this.#releaseHeld();
  }

  /** @internal Called by {@link sendReply}: counts an arrival and holds `release` until open. */
  hold(release: () => void): void {
    this.#arrivals += 1;
    for (const waiter of this.#waiters) {
      if (this.#arrivals < waiter.count) continue;
      this.#waiters.delete(waiter);
      waiter.resolve();
    }
    this.#releases.push(release);
    this.#releaseHeld();
  }

  #releaseHeld(): void {
    while (this.#releases.length > 0 && (this.#open || this.#allowance > 0)) {
      if (!this.#open) this.#allowance -= 1;
      this.#releases.shift()?.();
    }
  }
}

/**
 * Which requests a fault applies to: index files (incl. config.json), crate downloads, the
 * registry API (`/api/`), all, or one exact path (starting with `/`, query string excluded).
 */
export type FaultScope = 'all' | 'index' | 'crate' | 'api' | `/${string}`;

/** A response before faults are applied. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** True for `.crate` bytes: only these get corrupted. */
  crate?: boolean;
}

const EMPTY = Buffer.alloc(0);

/** The scope a request path belongs to, or `undefined` when only `all` faults apply. */
export function scopeOf(pathname: string): Exclude<FaultScope, 'all'> | undefined {
  if (pathname.startsWith('/index/')) return 'index';
  if (pathname.startsWith('/api/')) return 'api';
  const crateRoutes = ['/dl/', '/redirect/', '/files/', '/crates/'];
  return crateRoutes.some((prefix) => pathname.startsWith(prefix)) ? 'crate' : undefined;
}

/** A plain-text error reply. */
export function textReply(status: number, text: string): Reply {
  return {
    status,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    body: Buffer.from(`${text}\n`),
  };
}

/** 404, the only "does not exist" every cargo version understands. */
export function notFound(): Reply {
  return textReply(404, 'not found');
}

/** The reply of a `status` fault. */
export function statusReply(status: number, retryAfter: number | undefined): Reply {
  const reply = textReply(status, `injected status ${status}`);
  if (retryAfter !== undefined) reply.headers['Retry-After'] = String(retryAfter);
  return reply;
}

/**
 * An index file with its validators; a bodiless 304 when the request's `If-None-Match` (or,
 * lacking one, `If-Modified-Since`) still matches. Unconditional requests always get 200:
 * cargo errors on a 304 it did not ask for.
 */
export function indexReply(req: IncomingMessage, file: IndexFile, contentType: string): Reply {
  const headers = { ETag: file.etag, 'Last-Modified': file.lastModified };
  if (notModified(req, file)) return { status: 304, headers, body: EMPTY };
  return { status: 200, headers: { ...headers, 'Content-Type': contentType }, body: file.body };
}

/** 200 with the bytes of a `.crate`. */
export function crateReply(bytes: Buffer): Reply {
  return { status: 200, headers: { 'Content-Type': 'application/gzip' }, body: bytes, crate: true };
}

/** 302 to `location`. */
export function redirectReply(location: string): Reply {
  return { ...textReply(302, `see ${location}`), headers: { Location: location } };
}

/**
 * Writes `reply`, corrupting or truncating the body when `fault` says so. Only 200 bodies are
 * spoiled, so a redirect still leads to the (spoiled) file.
 */
export function sendReply(res: ServerResponse, reply: Reply, fault: Fault | undefined): void {
  if (res.destroyed || res.headersSent) return;
  if (fault?.kind === 'reset') {
    res.socket?.destroy();
    return;
  }
  if (fault?.kind === 'huge') {
    sendHuge(res, fault.bytes, fault.chunked === true);
    return;
  }
  let body = reply.body;
  if (fault?.kind === 'corrupt' && reply.crate && body.length > 0) body = flipOneByte(body);
  const headers: Record<string, string | number> = { ...reply.headers };
  if (reply.status !== 304) headers['Content-Length'] = body.length;
  res.writeHead(reply.status, headers);
  if (fault?.kind === 'gate' && reply.status === 200 && body.length > 1) {
    const half = Math.floor(body.length / 2);
    // Counted once the first half is handed to the socket, so a test that waits for the
    // arrival finds those bytes on their way to the client.
    res.write(body.subarray(0, half), () =>
      fault.gate.hold(() => {
        if (!res.destroyed) res.end(body.subarray(half));
      }),
    );
    return;
  }
  if (fault?.kind === 'truncated' && reply.status === 200 && body.length > 1) {
    res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
    return;
  }
  res.end(reply.status === 304 ? undefined : body);
}

function notModified(req: IncomingMessage, file: IndexFile): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    const tags = ifNoneMatch.split(',').map((tag) => tag.trim().replace(/^W\//, ''));
    return tags.includes('*') || tags.includes(file.etag);
  }
  const ifModifiedSince = req.headers['if-modified-since'];
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && Date.parse(file.lastModified) <= since;
}

function flipOneByte(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const at = Math.floor(copy.length / 2);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}

/** Streams `bytes` zeros in 64 KiB chunks, respecting backpressure; stops if the client leaves. */
function sendHuge(res: ServerResponse, bytes: number, chunked: boolean): void {
  const headers: Record<string, string | number> = { 'Content-Type': 'application/gzip' };
  if (!chunked) headers['Content-Length'] = bytes;
  res.writeHead(200, headers);
  const chunk = Buffer.alloc(64 * 1024);
  let left = bytes;
  const write = (): void => {
    while (left > 0 && !res.destroyed) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= part.length;
      if (!res.write(part)) {
        res.once('drain', write);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  write();
}
