/**
 * @module
 * A fake crates.io for the whole test suite, on 127.0.0.1 with a random port: a sparse index, crate
 * downloads (direct, redirected, and static.crates.io style), the registry web API (search and
 * crate metadata, fake-crates-api.ts), a git index on disk, fault injection, a request log, and
 * stop/restart on the same port.
 */
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { FakeCrateSpec } from './crate-pack.ts';
import { crateApiReply } from './fake-crates-api.ts';
import { FakeGitIndex } from './fake-git-index.ts';
import type { Fault, FaultScope, Reply } from './fake-http.ts';
import {
  crateReply,
  indexReply,
  notFound,
  redirectReply,
  scopeOf,
  sendReply,
  statusReply,
  textReply,
} from './fake-http.ts';
import type { IndexFile, PublishedCrate } from './fake-registry.ts';
import { FakeRegistry, makeIndexFile } from './fake-registry.ts';

export type { FakeCrateSpec } from './crate-pack.ts';
export type { Fault, FaultScope } from './fake-http.ts';
export { Gate } from './fake-http.ts';
export type { PublishedCrate } from './fake-registry.ts';

/** How to start a {@link FakeUpstream}. */
export interface FakeUpstreamOptions {
  /** Published in this order before the server answers anything. */
  crates?: FakeCrateSpec[];
  /** The `dl` of config.json; `{url}` becomes the server URL. Default `{url}/dl`. */
  dlTemplate?: string;
  /** The raw config.json body, verbatim (for malformed-config tests). */
  configOverride?: string;
  /** Serve HTTPS with this certificate and key (PEM), e.g. from tls-certs.ts; default HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Descriptions the registry API gives crates (search, metadata); default a generic line. */
  descriptions?: Record<string, string>;
}

/** One request as the fake upstream received it. */
export interface LoggedRequest {
  method: string;
  /** The raw request target, e.g. `/index/fa/ke/fake-a` (query string included). */
  path: string;
  headers: IncomingHttpHeaders;
}

/** Starts a fake upstream and publishes `options.crates`. Call `close()` in an `after` hook. */
export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const upstream = new FakeUpstream(options);
  for (const spec of options.crates ?? []) await upstream.addCrate(spec);
  await upstream.restart();
  return upstream;
}

/** The fake crates.io. Build it with {@link startFakeUpstream}. */
export class FakeUpstream {
  /** Every request since start or the last {@link resetLog}, in arrival order. */
  readonly requests: LoggedRequest[] = [];
  readonly #options: FakeUpstreamOptions;
  readonly #registry = new FakeRegistry();
  readonly #faults = new Map<FaultScope, { fault: Fault; remaining: number }>();
  readonly #rawIndexFiles = new Map<string, IndexFile>();
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #server: Server | undefined;
  #port = 0;
  #closed = false;
  #config: IndexFile | undefined;
  #git: FakeGitIndex | undefined;

  /** @internal Use {@link startFakeUpstream}. */
  constructor(options: FakeUpstreamOptions) {
    this.#options = options;
  }

  /** `http://127.0.0.1:PORT` (`https://` with `tls`), the same across stop and restart. */
  get url(): string {
    return `${this.#options.tls ? 'https' : 'http'}://127.0.0.1:${this.#port}`;
  }

  /** The sparse index root, with the trailing slash cargo insists on. */
  get indexUrl(): string {
    return `${this.url}/index/`;
  }

  /** The config.json body, exactly as served (and as committed to the git index). */
  get configJson(): string {
    if (this.#options.configOverride !== undefined) return this.#options.configOverride;
    const dl = (this.#options.dlTemplate ?? '{url}/dl').replaceAll('{url}', this.url);
    return JSON.stringify({ dl, api: this.url });
  }

  /** Publishes a version at runtime: its index file changes (new ETag) and git gets a commit. */
  async addCrate(spec: FakeCrateSpec): Promise<PublishedCrate> {
    const published = await this.#registry.publish(spec);
    await this.#commit(published.indexPath, `Create crate \`${spec.name}#${spec.version}\``);
    return published;
  }

  /** Sets the yanked flag (default: yank; pass `false` to unyank) and commits to git if enabled. */
  async yank(name: string, version: string, yanked = true): Promise<PublishedCrate> {
    const published = this.#registry.setYanked(name, version, yanked);
    const verb = yanked ? 'Yank' : 'Unyank';
    await this.#commit(published.indexPath, `${verb} crate \`${name}#${version}\``);
    return published;
  }

  /** Removes a published version (its index line and file; upstream then answers 404). */
  async remove(name: string, version: string): Promise<PublishedCrate> {
    const removed = this.#registry.remove(name, version);
    await this.#commit(removed.indexPath, `Delete crate \`${name}#${version}\``);
    return removed;
  }

  /** A published version; throws when it was never published. */
  crate(name: string, version: string): PublishedCrate {
    return this.#registry.crate(name, version);
  }

  /** Every published version, in publish order. */
  crates(): PublishedCrate[] {
    return this.#registry.crates();
  }

  /** Counts logged requests matching `predicate`, or whose path starts with it if a string. */
  count(predicate: ((request: LoggedRequest) => boolean) | string): number {
    const match =
      typeof predicate === 'string'
        ? (request: LoggedRequest) => request.path.startsWith(predicate)
        : predicate;
    return this.requests.filter(match).length;
  }

  /** Empties {@link requests} in place, so references to the array stay valid. */
  resetLog(): void {
    this.requests.length = 0;
  }

  /**
   * Sets the fault for `scope` (default `all`). A scoped fault wins over the `all` fault. Setting
   * or clearing with `all` replaces every fault; clearing a scope leaves the others alone.
   */
  setFault(fault: Fault | undefined, scope: FaultScope = 'all', times = Infinity): void {
    if (scope === 'all') this.#faults.clear();
    if (fault === undefined) this.#faults.delete(scope);
    else this.#faults.set(scope, { fault, remaining: times });
  }

  /** Serves `body` verbatim at index path `path` (e.g. with malformed lines), over any crate. */
  setRawIndexFile(path: string, body: string | Buffer): void {
    this.#rawIndexFiles.set(path, makeIndexFile(body));
  }

  /** The fault for a request path: an exact-path fault, then its scope's, then `all`. */
  #faultFor(pathname: string): Fault | undefined {
    const scope = scopeOf(pathname);
    for (const key of [pathname as FaultScope, scope, 'all' as const]) {
      const entry = key && this.#faults.get(key);
      if (!entry) continue;
      entry.remaining -= 1;
      if (entry.remaining <= 0) this.#faults.delete(key as FaultScope);
      return entry.fault;
    }
    return undefined;
  }

  /** Closes the listener and every open socket: connections are refused until {@link restart}. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
  }

  /** Listens again, on the same port once one was assigned, with the same data. */
  async restart(): Promise<void> {
    if (this.#closed) throw new Error('fake upstream is closed');
    if (this.#server !== undefined) return;
    const handler = (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res);
    const { tls } = this.#options;
    const server = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler)
      : createServer(handler);
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  /** Final stop for `after` hooks: idempotent, and waits for pending git pushes. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.stop();
    await this.#git?.idle();
  }

  /**
   * Creates `${dir}/upstream.git` (bare) fed from a work repo in `${dir}/work`, holding the index
   * files and config.json, and returns the bare repo path. Later changes are pushed to `master`.
   */
  async enableGit(dir: string): Promise<string> {
    if (this.#git !== undefined) throw new Error('git index already enabled');
    const files = new Map<string, Buffer>([['config.json', Buffer.from(this.configJson)]]);
    for (const [path, file] of this.#registry.indexFiles()) files.set(path, file.body);
    this.#git = await FakeGitIndex.create(dir, files);
    return this.#git.barePath;
  }

  /** Replaces git `master` with one parentless commit of the same tree, like crates.io does. */
  async squashGitHistory(): Promise<void> {
    if (this.#git === undefined) throw new Error('git index not enabled');
    await this.#git.squash();
  }

  async #commit(indexPath: string, message: string): Promise<void> {
    if (this.#git === undefined) return;
    const file = this.#registry.indexFile(indexPath);
    await this.#git.commit(new Map([[indexPath, file?.body]]), message);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    this.requests.push({ method: req.method ?? 'GET', path, headers: req.headers });
    const pathname = path.split('?')[0] ?? '/';
    const fault = this.#faultFor(pathname);
    // Hanging requests are released when stop() destroys their sockets.
    if (fault?.kind === 'hang') return;
    if (fault?.kind !== 'slow') {
      this.#answer(req, res, pathname, fault);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#answer(req, res, pathname, fault);
    }, fault.delayMs);
    this.#timers.add(timer);
  }

  #answer(req: IncomingMessage, res: ServerResponse, pathname: string, fault?: Fault): void {
    let reply: Reply;
    if (fault?.kind === 'status') reply = statusReply(fault.status, fault.retryAfter);
    else if (req.method !== 'GET' && req.method !== 'HEAD') reply = textReply(405, 'GET only');
    else reply = this.#route(req, pathname);
    sendReply(res, reply, fault);
  }

  #route(req: IncomingMessage, pathname: string): Reply {
    const segments = decodeSegments(pathname);
    if (segments === undefined) return notFound();
    const [root, ...rest] = segments;
    if (root === 'index') return this.#indexRoute(req, rest.join('/'));
    // The registry web API, at `api` of config.json (this server's root).
    if (root === 'api' && rest[0] === 'v1' && rest[1] === 'crates') {
      const query = new URL(req.url ?? '/', this.url).searchParams;
      const data = {
        crates: this.crates(),
        ...(this.#options.descriptions && { descriptions: this.#options.descriptions }),
      };
      return crateApiReply(req, rest.slice(2), query, data);
    }
    if ((root === 'dl' || root === 'redirect') && rest.length === 3 && rest[2] === 'download') {
      const found = this.#registry.find(rest[0] ?? '', rest[1] ?? '');
      if (found === undefined) return notFound();
      if (root === 'dl') return crateReply(found.bytes);
      const file = encodeURIComponent(`${found.name}-${found.version}.crate`);
      return redirectReply(`${this.url}/files/${file}`);
    }
    // `/files/{name}-{version}.crate` (redirect target) and static.crates.io's
    // `/crates/{name}/{name}-{version}.crate`, for dl templates with markers.
    if (root === 'files' && rest.length === 1) return this.#fileRoute(rest[0]);
    if (root === 'crates' && rest.length === 2) return this.#fileRoute(rest[1], rest[0]);
    return notFound();
  }

  #indexRoute(req: IncomingMessage, path: string): Reply {
    if (path === 'config.json') {
      this.#config ??= makeIndexFile(this.configJson);
      return indexReply(req, this.#config, 'application/json');
    }
    const file = this.#rawIndexFiles.get(path) ?? this.#registry.indexFile(path);
    return file === undefined ? notFound() : indexReply(req, file, 'text/plain');
  }

  #fileRoute(fileName: string | undefined, name?: string): Reply {
    const found = this.#registry
      .crates()
      .find((c) => `${c.name}-${c.version}.crate` === fileName && (name ?? c.name) === c.name);
    return found === undefined ? notFound() : crateReply(found.bytes);
  }
}

/** Splits a path into percent-decoded segments (`%2B` → `+`), or `undefined` if malformed. */
function decodeSegments(pathname: string): string[] | undefined {
  try {
    return pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}
