/**
 * @module
 * Component archives (`dist/YYYY-MM-DD/*.tar.{gz,xz}`): immutable once stored, and stored only
 * when their sha256 equals the hash a held channel manifest gives them (or, for an archive no
 * held manifest lists, the hash of upstream's `.sha256` sidecar). A miss is downloaded once
 * however many clients and jobs ask: the first starts a {@link Spool}, the others join it, each
 * reading the spool file at its own pace while it arrives. Once verified, the file is stored
 * through the tracked store; an archive that fails its hash reaches no client as a good response
 * and is not stored. An archive with no hash to check is passed through, not stored.
 */
import { PassThrough, type Readable } from 'node:stream';
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { toolchainKey } from '../registry/rustup-paths.ts';
import { parseSidecar } from '../registry/sha256-sidecar.ts';
import type { BlobStore, PositionalBlob } from '../storage/blob-store.ts';
import { isUpstreamNotFound, type RustupUpstream } from '../upstream/rustup-dist.ts';
import type { Catalogue } from './catalogue.ts';
import { LruMap } from './lru.ts';
import { SingleFlight } from './single-flight.ts';
import type { ArchiveHashes } from './toolchain-hashes.ts';
import { Spool, type SpoolResult } from './toolchain-spool.ts';

/** What {@link ToolchainArchives} needs. */
export interface ToolchainArchivesDeps {
  store: BlobStore;
  catalogue: Catalogue;
  upstream: RustupUpstream | undefined;
  hashes: ArchiveHashes;
  /** Where downloads are spooled (below the storage root's `tmp/`). */
  spoolDir: string;
  maxBytes: number;
  log: AppLogger;
}

/** An archive ready to send. */
export interface ArchiveBody {
  /** Read at positions (storage on disk, a download under way), or a stream (a bucket, a pass-through). */
  body: PositionalBlob | Readable;
  size: number | undefined;
  outcome: 'hit' | 'miss';
  upstreamBytes: number;
  /** False for an archive passed through without a hash to check (not stored). */
  verified: boolean;
}

/** A download under way and the promise of its storing. */
interface Download {
  spool: Spool;
  stored: Promise<SpoolResult>;
}

/** What starting a download found. */
type Start = Download | 'stored' | 'unverifiable';

/** Serves and fetches archives. */
export class ToolchainArchives {
  readonly #deps: ToolchainArchivesDeps;
  readonly #downloads = new Map<string, Download>();
  readonly #starts = new SingleFlight<Start>();
  readonly #unverifiableLogged = new LruMap<string, true>(1000);

  constructor(deps: ToolchainArchivesDeps) {
    this.#deps = deps;
  }

  /** Downloads under way. */
  get inFlight(): number {
    return this.#downloads.size;
  }

  /** Resolves once no download is under way (each stored or failed). */
  async idle(): Promise<void> {
    while (this.#downloads.size > 0) {
      await Promise.allSettled([...this.#downloads.values()].map((download) => download.stored));
    }
  }

  /** Opens an archive for a client: from storage, else joining or starting its download. */
  async open(path: string): Promise<ArchiveBody> {
    const stored = await this.#openStored(path);
    if (stored) return stored;
    const upstream = this.#requireUpstream(path);
    let led = false;
    const start =
      this.#downloads.get(path) ??
      (await this.#starts.run(path, () => {
        led = true;
        return this.#start(path, upstream, undefined);
      }));
    if (start === 'stored') {
      const now = await this.#openStored(path);
      if (now) return now;
      throw Errors.CARGO_CACHER_STORAGE(`${path} vanished from storage`);
    }
    if (start === 'unverifiable') return this.#passThrough(path, upstream);
    const size = start.spool.size;
    const upstreamBytes = led ? (size ?? start.spool.written) : 0;
    return { body: start.spool.source(), size, outcome: 'miss', upstreamBytes, verified: true };
  }

  /**
   * Stores an archive for a job (the mirror), joining a download under way; `sha256` is the hash
   * the job's manifest gives it. Resolves with the bytes fetched (0 when it was held already).
   */
  async fetch(path: string, sha256: string): Promise<{ fetched: boolean; bytes: number }> {
    if (await this.has(path)) return { fetched: false, bytes: 0 };
    const upstream = this.#requireUpstream(path);
    const start =
      this.#downloads.get(path) ??
      (await this.#starts.run(path, () => this.#start(path, upstream, sha256)));
    if (start === 'stored') return { fetched: false, bytes: 0 };
    if (start === 'unverifiable') throw Errors.CARGO_CACHER_NOT_FOUND(`no hash known for ${path}`);
    const result = await start.stored;
    return { fetched: true, bytes: result.size };
  }

  /** True when the archive is stored. */
  async has(path: string): Promise<boolean> {
    const key = toolchainKey(path);
    if (this.#deps.catalogue.has(key)) return true;
    return (await this.#deps.store.stat(key)) !== undefined;
  }

  async #openStored(path: string): Promise<ArchiveBody | undefined> {
    const key = toolchainKey(path);
    const { store, catalogue } = this.#deps;
    const positional = await store.openPositional?.(key);
    const opened = positional ?? (await store.open(key));
    if (!opened) return undefined;
    catalogue.noteServed(key, opened.size);
    return {
      body: 'stream' in opened ? opened.stream : opened,
      size: opened.size,
      outcome: 'hit',
      upstreamBytes: 0,
      verified: true,
    };
  }

  async #start(path: string, upstream: RustupUpstream, known: string | undefined): Promise<Start> {
    // A download that finished while this one queued stored it already.
    if (await this.has(path)) return 'stored';
    const sha256 =
      known ?? (await this.#deps.hashes.expected(path)) ?? (await sidecarHash(upstream, path));
    if (sha256 === undefined) return 'unverifiable';
    const file = await upstream.open(path);
    // Stored as it arrives, in the same pass as the spool: the put checks the hash itself and
    // publishes only a match, and no second copy of a large archive is read back.
    const tee = new PassThrough();
    const { store, maxBytes, spoolDir } = this.#deps;
    const putting = store.put(toolchainKey(path), tee, { expectedSha256: sha256, maxBytes });
    putting.catch(() => undefined);
    const spool = await Spool.start(file.body, {
      dir: spoolDir,
      expectedSha256: sha256,
      size: file.size,
      maxBytes,
      label: path,
      tee,
    });
    const download: Download = { spool, stored: this.#storeWhenVerified(path, spool, putting) };
    // Clients alone may be waiting: a failure is theirs to see, never an unhandled rejection.
    download.stored.catch(() => undefined);
    this.#downloads.set(path, download);
    return download;
  }

  /** Waits for the download to be verified and stored, then lets it go. */
  async #storeWhenVerified(
    path: string,
    spool: Spool,
    putting: Promise<unknown>,
  ): Promise<SpoolResult> {
    const { log } = this.#deps;
    try {
      const result = await spool.done;
      await putting;
      log.info({ path, bytes: result.size }, 'toolchains: cached archive');
      return result;
    } catch (err) {
      log.warn(
        { path, code: (err as { code?: string }).code },
        `toolchains: ${(err as Error).message}`,
      );
      throw err;
    } finally {
      this.#downloads.delete(path);
      await spool.dispose().catch((err: unknown) => log.warn({ err }, 'toolchains: spool cleanup'));
    }
  }

  /** An archive no manifest or sidecar vouches for: straight from upstream, not stored. */
  async #passThrough(path: string, upstream: RustupUpstream): Promise<ArchiveBody> {
    if (!this.#unverifiableLogged.get(path)) {
      this.#unverifiableLogged.set(path, true);
      this.#deps.log.warn({ path }, 'toolchains: no hash known for this archive; passed through');
    }
    const file = await upstream.open(path);
    return {
      body: file.body,
      size: file.size,
      outcome: 'miss',
      upstreamBytes: file.size ?? 0,
      verified: false,
    };
  }

  #requireUpstream(path: string): RustupUpstream {
    const { upstream } = this.#deps;
    if (upstream) return upstream;
    throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
      `${path} is not cached and no rustup upstream is used (--offline or --rustup-upstream none)`,
    );
  }
}

/** The hash of upstream's `.sha256` of an archive, or `undefined` when it has none. */
async function sidecarHash(upstream: RustupUpstream, path: string): Promise<string | undefined> {
  try {
    return parseSidecar(await upstream.read(`${path}.sha256`, 4096));
  } catch (err) {
    if (isUpstreamNotFound(err)) return undefined;
    throw err;
  }
}
