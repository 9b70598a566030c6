/**
 * @module
 * The crate cache: serves `.crate` files from storage, and on a miss downloads them once from
 * upstream, verifying the sha256 against the index before anything is stored or served.
 */
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { type CrateId, crateKey, crateLabel } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { expandDlTemplate } from '../registry/dl-template.ts';
import { type CrateVersion, findVersion } from '../registry/index-entry.ts';
import type { BlobStore, OpenedBlob } from '../storage/blob-store.ts';
import { openCrateDownload } from '../upstream/crate-download.ts';
import type { HttpClient } from '../upstream/http-client.ts';
import type { IndexCache } from './index-cache.ts';
import { LruMap } from './lru.ts';
import type { RegistryConfigService } from './registry-config-service.ts';
import { SingleFlight } from './single-flight.ts';

/** What {@link CrateCache} needs. */
export interface CrateCacheDeps {
  store: BlobStore;
  index: IndexCache;
  registryConfig: RegistryConfigService;
  http: HttpClient;
  offline: boolean;
  maxCrateBytes: number;
  log: AppLogger;
}

/** A crate ready to stream, with how it was obtained. */
export interface CrateLookup {
  blob: OpenedBlob;
  /** Hex sha256, when known without hashing (it is, for everything we stored). */
  checksum: string | undefined;
  outcome: 'hit' | 'miss';
  upstreamBytes: number;
}

/** The crate download cache. */
export class CrateCache {
  readonly #deps: CrateCacheDeps;
  readonly #flights = new SingleFlight<{ checksum: string; upstreamBytes: number }>();
  readonly #checksums = new LruMap<string, string>(200_000);

  constructor(deps: CrateCacheDeps) {
    this.#deps = deps;
  }

  /** Opens a crate, fetching it first when it is not cached. */
  async open(id: CrateId): Promise<CrateLookup> {
    const key = crateKey(id);
    const cached = await this.#deps.store.open(key);
    if (cached) {
      return {
        blob: cached,
        checksum: await this.#knownChecksum(id),
        outcome: 'hit',
        upstreamBytes: 0,
      };
    }
    if (this.#deps.offline) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${crateLabel(id)} is not cached and cargo-cacher runs with --offline`,
      );
    }
    const fetched = await this.#flights.run(crateLabel(id), () => this.#fetch(id));
    const blob = await this.#deps.store.open(key);
    if (!blob) throw Errors.CARGO_CACHER_STORAGE(`${crateLabel(id)} vanished from storage`);
    return {
      blob,
      checksum: fetched.checksum,
      outcome: 'miss',
      upstreamBytes: fetched.upstreamBytes,
    };
  }

  /** Downloads running now (single flights), for the in-flight gauge. */
  get inFlight(): number {
    return this.#flights.size;
  }

  /** True when the crate is stored (no upstream contact). */
  async has(id: CrateId): Promise<boolean> {
    return (await this.#deps.store.stat(crateKey(id))) !== undefined;
  }

  /**
   * Downloads and stores a crate, for prefetch and mirror jobs; shares the single flight with
   * client requests. `known` is the version's index line when the caller has read it already
   * (the mirror reads the git index), which saves an index lookup.
   */
  async fetch(
    id: CrateId,
    known?: CrateVersion,
  ): Promise<{ checksum: string; upstreamBytes: number }> {
    return this.#flights.run(crateLabel(id), () => this.#fetch(id, known));
  }

  async #fetch(
    id: CrateId,
    known?: CrateVersion,
  ): Promise<{ checksum: string; upstreamBytes: number }> {
    const entry = known ?? (await this.#findInIndex(id));
    // A caller whose storage miss came back after another flight stored the crate lands here.
    if (await this.has(id)) return { checksum: entry.checksum, upstreamBytes: 0 };
    // open() checks this before; prefetch and mirror jobs come straight here.
    if (this.#deps.offline) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${crateLabel(id)} is not cached and cargo-cacher runs with --offline`,
      );
    }
    const template = await this.#deps.registryConfig.downloadTemplate();
    const url = expandDlTemplate(template, entry);
    const body = await openCrateDownload(this.#deps.http, url, this.#deps.maxCrateBytes);
    try {
      const stored = await this.#deps.store.put(crateKey(id), body, {
        expectedSha256: entry.checksum,
        maxBytes: this.#deps.maxCrateBytes,
      });
      this.#checksums.set(crateKey(id), entry.checksum);
      this.#deps.log.info({ crate: crateLabel(id), bytes: stored.size }, 'cached crate');
      return { checksum: entry.checksum, upstreamBytes: stored.size };
    } catch (err) {
      body.destroy();
      throw describeStoreFailure(id, url, err);
    }
  }

  /**
   * The index line of a version. A version missing from a fresh cached index may have been
   * published since, so the index is revalidated once before answering 404.
   */
  async #findInIndex(id: CrateId): Promise<CrateVersion> {
    const path = indexPath(id.name);
    let lookup = await this.#deps.index.get(path);
    let entry = lookup.found ? findVersion(lookup.file.body, id.version) : undefined;
    if (!entry && lookup.found && lookup.outcome === 'hit') {
      lookup = await this.#deps.index.get(path, { revalidate: true });
      entry = lookup.found ? findVersion(lookup.file.body, id.version) : undefined;
    }
    if (!entry) throw Errors.CARGO_CACHER_NOT_FOUND(`${crateLabel(id)} is not in the index`);
    return entry;
  }

  async #knownChecksum(id: CrateId): Promise<string | undefined> {
    const key = crateKey(id);
    const known = this.#checksums.get(key);
    if (known) return known;
    const file = await this.#deps.index.peek(indexPath(id.name));
    const checksum = file && findVersion(file.body, id.version)?.checksum;
    if (checksum) this.#checksums.set(key, checksum);
    return checksum;
  }
}

/** Errors that come from our own disk, not from upstream. */
const STORAGE_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EIO', 'EMFILE']);

function describeStoreFailure(id: CrateId, url: string, err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'CARGO_CACHER_BODY_TOO_LARGE') {
    return Errors.CARGO_CACHER_UPSTREAM_INVALID(
      `${crateLabel(id)} from ${url} is larger than the crate size limit; not cached`,
    );
  }
  if (code !== undefined && STORAGE_ERRNOS.has(code)) {
    return Errors.CARGO_CACHER_STORAGE(`cannot store ${crateLabel(id)}: ${code}`, { cause: err });
  }
  if (code === 'CARGO_CACHER_CHECKSUM_MISMATCH') {
    return Errors.CARGO_CACHER_CHECKSUM_MISMATCH(
      `${crateLabel(id)} from ${url} failed verification (${(err as Error).message}); not cached`,
      { cause: err },
    );
  }
  if (code?.startsWith('CARGO_CACHER_')) return err;
  return Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE(
    `download of ${crateLabel(id)} from ${url} broke off: ${(err as Error).message}`,
    { cause: err, retryAfter: 1 },
  );
}
