/**
 * @module
 * The crate cache: serves `.crate` files from storage, and on a miss downloads them once from
 * upstream, verifying the sha256 against the index before anything is stored or served.
 */
import type { Readable } from 'node:stream';
import { Errors, isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import type { PolicyObserver } from '../observe/policy-events.ts';
import type { LivePolicy } from '../policy/live-policy.ts';
import { type CrateId, crateKey, crateLabel } from '../registry/crate-id.ts';
import { indexPath } from '../registry/crate-name.ts';
import { type CrateVersion, findVersion } from '../registry/index-entry.ts';
import { decideVersion } from '../registry/policy.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { formatDuration } from '../units.ts';
import type { UpstreamGuard } from '../upstream/failover.ts';
import type { HttpClient } from '../upstream/http-client.ts';
import type { Catalogue } from './catalogue.ts';
import { downloadAndStore, openPassThrough } from './crate-sources.ts';
import type { HotCrates } from './hot-crates.ts';
import type { IndexCache } from './index-cache.ts';
import { LruMap } from './lru.ts';
import type { RegistryConfigService } from './registry-config-service.ts';
import { SingleFlight } from './single-flight.ts';
import type { NotStoredReason, StorageWriteGuard } from './storage-guard.ts';

/** What {@link CrateCache} needs. */
export interface CrateCacheDeps {
  store: BlobStore;
  index: IndexCache;
  registryConfig: RegistryConfigService;
  http: HttpClient;
  offline: boolean;
  /** `--only-held`: a client's download of a version not held is refused, not fetched. */
  onlyHeld?: boolean;
  maxCrateBytes: number;
  log: AppLogger;
  /** Retries, failover over `-u a,b` and circuit breakers. */
  guard?: UpstreamGuard;
  /** While storage takes no writes, crates are passed through (verified) instead of stored. */
  storageGuard?: StorageWriteGuard;
  /** What is held: sizes without a storage call, and when each crate was last served. */
  catalogue?: Catalogue;
  /** Small crates kept in memory once served. */
  hotCrates?: HotCrates;
  /** The supply-chain policy: withheld versions are refused with 403, cached or not. */
  policy?: LivePolicy;
  /** Told about every refused download (statistics). */
  onPolicyEvent?: PolicyObserver;
  now?: () => number;
}

/** Options of {@link CrateCache.open}. */
export interface OpenOptions {
  /**
   * True when the client already has the bytes of this sha256 (its `If-None-Match` names it):
   * the lookup then carries no body, and nothing is read.
   */
  clientHas?: (checksum: string) => boolean;
}

/** A crate ready to send, with how it was obtained. */
export interface CrateLookup {
  /**
   * The bytes: small crates whole (held in memory from then on), others as a stream; none when
   * the client already has them ({@link OpenOptions.clientHas}).
   */
  body: Buffer | Readable | undefined;
  /** Unknown only for a pass-through whose upstream sent no length. */
  size: number | undefined;
  /** Hex sha256, when known without hashing (it is, for everything we stored). */
  checksum: string | undefined;
  outcome: 'hit' | 'miss';
  upstreamBytes: number;
  /** Set when the crate was passed through from upstream without being stored: why not. */
  notStored?: NotStoredReason;
}

/** The crate download cache. */
export class CrateCache {
  readonly #deps: CrateCacheDeps;
  readonly #flights = new SingleFlight<{ checksum: string; upstreamBytes: number }>();
  readonly #policyLogged = new LruMap<string, true>(10_000);

  constructor(deps: CrateCacheDeps) {
    this.#deps = deps;
  }

  /** Opens a crate, fetching it first when it is not cached. */
  async open(id: CrateId, options: OpenOptions = {}): Promise<CrateLookup> {
    const policy = this.#deps.policy;
    if (policy && !policy.inactive) await this.#checkPolicy(id, policy);
    const key = crateKey(id);
    const held = this.#deps.hotCrates?.get(key);
    if (held) {
      const body = options.clientHas?.(held.checksum) ? undefined : held.body;
      return this.#served(key, { body, size: held.body.length, checksum: held.checksum }, 'hit', 0);
    }
    const facts = await this.#storedFacts(key);
    if (facts) {
      const checksum = facts.sha256 ?? (await this.#checksumFromIndex(id));
      const stored = await this.#readStored(key, facts.size, checksum, options);
      if (stored) return this.#served(key, { ...stored, checksum }, 'hit', 0);
    }
    if (this.#deps.offline) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${crateLabel(id)} is not cached and cargo-cacher runs with --offline`,
      );
    }
    if (this.#deps.onlyHeld) {
      throw Errors.CARGO_CACHER_NOT_FOUND(
        `${crateLabel(id)} is not held and cargo-cacher serves only held versions (--only-held)`,
      );
    }
    if (this.#deps.storageGuard?.blocked) return this.#passThrough(id, options);
    let fetched: { checksum: string; upstreamBytes: number };
    // Only the request that started the download counts its bytes as fetched upstream; the
    // others joined it and cost upstream nothing.
    let ledTheFlight = false;
    try {
      fetched = await this.#flights.run(crateLabel(id), () => {
        ledTheFlight = true;
        return this.#fetch(id);
      });
    } catch (err) {
      // The body went into a write that storage refused (the store's caller told the guard, so
      // it blocks storing now): download it again, straight to the client.
      if (isCacherError(err, 'CARGO_CACHER_STORAGE') && this.#deps.storageGuard?.blocked) {
        return this.#passThrough(id, options);
      }
      throw err;
    }
    const stored = await this.#storedFacts(key);
    const body = stored && (await this.#readStored(key, stored.size, fetched.checksum, options));
    if (!body) throw Errors.CARGO_CACHER_STORAGE(`${crateLabel(id)} vanished from storage`);
    const upstreamBytes = ledTheFlight ? fetched.upstreamBytes : 0;
    return this.#served(key, { ...body, checksum: fetched.checksum }, 'miss', upstreamBytes);
  }

  /**
   * The stored bytes of `key`, or `undefined` when it is not stored. A small crate whose
   * checksum is known is read whole and kept in memory (one read into one buffer of the file's
   * size: no chunks to copy and free, which left the heap fragmented by tens of MB); others are
   * streamed. A client that has the bytes gets none.
   */
  async #readStored(
    key: string,
    size: number,
    checksum: string | undefined,
    options: OpenOptions,
  ): Promise<{ body: Buffer | Readable | undefined; size: number } | undefined> {
    if (checksum && options.clientHas?.(checksum)) return { body: undefined, size };
    const hot = this.#deps.hotCrates;
    if (hot && checksum && hot.accepts(size)) {
      const body = await this.#deps.store.read(key);
      return body && { body: hot.keep(key, body, checksum), size: body.length };
    }
    const opened = await this.#deps.store.open(key);
    return opened && { body: opened.stream, size: opened.size };
  }

  /**
   * Size and sha256 of a stored crate, from the catalogue (one indexed read); a crate it does
   * not know is looked up in storage (stored by another instance on the bucket, or by a run
   * killed before its record: serving it records it).
   */
  async #storedFacts(key: string): Promise<{ size: number; sha256?: string } | undefined> {
    const row = this.#deps.catalogue?.get(key);
    if (row) return { size: row.size, ...(row.sha256 !== null && { sha256: row.sha256 }) };
    const stat = await this.#deps.store.stat(key);
    return stat && { size: stat.size };
  }

  #served(
    key: string,
    found: { body: Buffer | Readable | undefined; size: number; checksum: string | undefined },
    outcome: 'hit' | 'miss',
    upstreamBytes: number,
  ): CrateLookup {
    this.#deps.catalogue?.noteServed(key, found.size);
    return { ...found, outcome, upstreamBytes };
  }

  /** Downloads running now (single flights), for the in-flight gauge. */
  get inFlight(): number {
    return this.#flights.size;
  }

  /**
   * True when the crate is stored (no upstream contact): the catalogue answers for what it
   * knows; anything else is looked up in storage, and recorded when found there.
   */
  async has(id: CrateId): Promise<boolean> {
    const key = crateKey(id);
    const catalogue = this.#deps.catalogue;
    if (catalogue?.has(key)) return true;
    const stat = await this.#deps.store.stat(key);
    if (stat && catalogue) catalogue.adopt([{ key, ...stat }]);
    return stat !== undefined;
  }

  /**
   * Downloads and stores a crate, for prefetch and mirror jobs; shares the single flight with
   * client requests. `known` is the version's index line when the caller has read it already
   * (the mirror reads the git index), which saves an index lookup.
   */
  async fetch(
    id: CrateId,
    known?: CrateVersion,
    options: { policyChecked?: boolean } = {},
  ): Promise<{ checksum: string; upstreamBytes: number }> {
    // Jobs respect the policy too: a withheld version is not stored (the job reports why). The
    // mirror decides from the index file it read itself (`policyChecked`).
    const policy = this.#deps.policy;
    if (policy && !policy.inactive && !options.policyChecked) await this.#checkPolicy(id, policy);
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
    // Other instances on a shared store may be fetching it too: the lease lets one of them do it.
    const lease = await this.#deps.store.lease(crateKey(id));
    try {
      if (lease.published) return { checksum: entry.checksum, upstreamBytes: 0 };
      return await downloadAndStore(this.#deps, id, entry);
    } finally {
      await lease.release();
    }
  }

  /** Serves a crate straight from upstream, verified on the way, without storing it. */
  async #passThrough(id: CrateId, options: OpenOptions): Promise<CrateLookup> {
    const entry = await this.#findInIndex(id);
    const common = { checksum: entry.checksum, outcome: 'miss' as const };
    const notStored = this.#deps.storageGuard?.reason ?? 'storage not writable';
    if (options.clientHas?.(entry.checksum)) {
      return { ...common, body: undefined, size: undefined, upstreamBytes: 0, notStored };
    }
    const body = await openPassThrough(this.#deps, id, entry);
    return {
      ...common,
      body: body.stream,
      size: body.size,
      upstreamBytes: body.size ?? 0,
      notStored,
    };
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

  /**
   * Refuses a version the policy withholds (cached or not), with a message cargo prints. A
   * version the index does not list is left to the lookup that answers 404.
   */
  async #checkPolicy(id: CrateId, policy: LivePolicy): Promise<void> {
    const lookup = await this.#deps.index.get(indexPath(id.name));
    if (!lookup.found) return;
    const now = (this.#deps.now ?? Date.now)();
    const decision = decideVersion(lookup.file.body, id.version, policy.current(), now);
    if (!decision || decision.kind === 'serve') return;
    const label = crateLabel(id);
    this.#deps.onPolicyEvent?.({
      kind: 'blocked',
      reason: decision.kind,
      crate: label,
      ...(decision.kind === 'young' && { availableAt: decision.availableAt }),
    });
    const message =
      decision.kind === 'denied'
        ? `${label} is denied by this cache's supply-chain policy (rule "${decision.rule}")`
        : `${label} was published at ${new Date(decision.pubtime).toISOString()}; this cache ` +
          `serves versions once they are ${formatDuration(policy.settings.minPublishAgeMs ?? 0)} ` +
          `old (--min-publish-age): available from ${new Date(decision.availableAt).toISOString()}`;
    // Once per version and decision, however many clients ask.
    if (!this.#policyLogged.get(`${label}:${decision.kind}`)) {
      this.#policyLogged.set(`${label}:${decision.kind}`, true);
      this.#deps.log.warn({ crate: label }, `policy: refused ${message}`);
    }
    // The decision travels as the cause: jobs report a young version as waiting.
    throw Errors.CARGO_CACHER_POLICY(message, { cause: decision });
  }

  /** The index `cksum` of a version, from the cached index file (no upstream contact). */
  async #checksumFromIndex(id: CrateId): Promise<string | undefined> {
    const file = await this.#deps.index.peek(indexPath(id.name));
    return (file && findVersion(file.body, id.version)?.checksum) || undefined;
  }
}
