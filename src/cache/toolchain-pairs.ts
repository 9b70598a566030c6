/**
 * @module
 * Files that rustup checks against a `.sha256` sidecar it downloads first: channel manifests and
 * rustup-init. They are stored and served only as a matching pair: a new file is stored only when
 * its sha256 equals the new sidecar's, and the sidecar only after it, so storage never holds a
 * new sidecar beside an old file, and a pair found not matching (a crash between the two writes)
 * counts as not held. Undated names are revalidated once the TTL has passed (the sidecar is
 * fetched and compared: a cheap request), and when upstream fails the last good pair is served,
 * marked stale. Dated names never change once held.
 */
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Errors, isCacherError } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { parseChannelManifest } from '../registry/channel-manifest.ts';
import { type PairPaths, toolchainKey } from '../registry/rustup-paths.ts';
import { parseSidecar, sha256Of } from '../registry/sha256-sidecar.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { isUpstreamNotFound, type RustupUpstream } from '../upstream/rustup-dist.ts';
import type { Catalogue } from './catalogue.ts';
import { SingleFlight } from './single-flight.ts';
import type { ArchiveHashes } from './toolchain-hashes.ts';

/** Largest channel manifest read (nightly's are about 1 MB). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Largest sidecar read. */
const MAX_SIDECAR_BYTES = 4096;

/** How the pair was found fresh enough to serve. */
export type PairOutcome = 'hit' | 'revalidated' | 'miss' | 'stale';

/** A held pair: the sha256 both members agree on, and when upstream last confirmed it. */
interface PairState {
  sha256: string;
  checkedAt: number;
}

/** What {@link ToolchainPairs} needs. */
export interface ToolchainPairsDeps {
  store: BlobStore;
  catalogue: Catalogue;
  /** Absent with `--offline` or `--rustup-upstream none`: held pairs are all there is. */
  upstream: RustupUpstream | undefined;
  hashes: ArchiveHashes;
  ttlMs: number;
  maxFileBytes: number;
  log: AppLogger;
  now: () => number;
}

/** Holds, revalidates and stores the pairs. */
export class ToolchainPairs {
  readonly #deps: ToolchainPairsDeps;
  readonly #held = new Map<string, PairState>();
  readonly #loads = new SingleFlight<PairState | undefined>();
  readonly #checks = new SingleFlight<PairOutcome>();

  constructor(deps: ToolchainPairsDeps) {
    this.#deps = deps;
  }

  /** Upstream checks and fetches running now. */
  get inFlight(): number {
    return this.#checks.size;
  }

  /**
   * Makes sure the pair is held and fresh enough to serve, and says how. Not held and not to be
   * had: `CARGO_CACHER_NOT_FOUND` (upstream has no such file) or upstream's failure.
   */
  async ensure(pair: PairPaths): Promise<PairOutcome> {
    const state =
      this.#held.get(pair.file) ?? (await this.#loads.run(pair.file, () => this.#load(pair)));
    const { upstream, ttlMs, now } = this.#deps;
    if (state && (!pair.mutable || !upstream)) return 'hit';
    if (!upstream) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${pair.file} is not cached and no rustup upstream is used (--offline or --rustup-upstream none)`,
      );
    }
    if (state && now() - state.checkedAt < ttlMs) return 'hit';
    try {
      return await this.#checks.run(pair.file, () => this.#refresh(pair, upstream, state));
    } catch (err) {
      // The last good pair goes on being served while upstream fails; a file upstream says
      // does not exist is not.
      if (!state || isUpstreamNotFound(err)) throw err;
      this.#deps.log.warn(
        { path: pair.file, code: (err as { code?: string }).code },
        `toolchains: serving the last good ${pair.file}: ${(err as Error).message}`,
      );
      return 'stale';
    }
  }

  /** Forgets a pair (one of its files was found missing): the next request fetches it again. */
  forget(pair: PairPaths): void {
    this.#held.delete(pair.file);
  }

  /** The sha256 the held pair agrees on. */
  sha256Of(pair: PairPaths): string | undefined {
    return this.#held.get(pair.file)?.sha256;
  }

  /** A stored pair, when both files are there and match (checked at the next TTL). */
  async #load(pair: PairPaths): Promise<PairState | undefined> {
    const { store, catalogue } = this.#deps;
    const sidecar = await store.read(toolchainKey(pair.sidecar));
    const sha256 = sidecar && parseSidecar(sidecar);
    if (!sha256) return undefined;
    const fileKey = toolchainKey(pair.file);
    const recorded = catalogue.get(fileKey)?.sha256 ?? (await hashStored(store, fileKey));
    if (recorded !== sha256) return undefined;
    const state = { sha256, checkedAt: 0 };
    this.#held.set(pair.file, state);
    return state;
  }

  /**
   * Asks upstream for the sidecar; a new one brings the file, stored once it matches. One more
   * round when the file does not match: upstream may have been replacing both meanwhile.
   */
  async #refresh(
    pair: PairPaths,
    upstream: RustupUpstream,
    held: PairState | undefined,
  ): Promise<PairOutcome> {
    // With a pair to fall back on, a client waits for one round, not for retries.
    const options = held ? { attempts: 1 } : {};
    for (let round = 1; ; round++) {
      const sidecar = await upstream.read(pair.sidecar, MAX_SIDECAR_BYTES, options);
      const sha256 = parseSidecar(sidecar);
      if (!sha256) {
        throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
          `upstream's ${pair.sidecar} is not a sha256 line`,
        );
      }
      const now = this.#deps.now();
      if (held?.sha256 === sha256) {
        held.checkedAt = now;
        return 'revalidated';
      }
      try {
        await this.#storePair(pair, upstream, sidecar, sha256, options);
      } catch (err) {
        if (round < 2 && isCacherError(err, 'CARGO_CACHER_CHECKSUM_MISMATCH')) continue;
        throw err;
      }
      this.#held.set(pair.file, { sha256, checkedAt: now });
      return 'miss';
    }
  }

  /** Fetches the file, stores it if it matches `sha256`, then the sidecar. */
  async #storePair(
    pair: PairPaths,
    upstream: RustupUpstream,
    sidecar: Buffer,
    sha256: string,
    options: { attempts?: number },
  ): Promise<void> {
    const { store, log } = this.#deps;
    const fileKey = toolchainKey(pair.file);
    if (pair.manifest) {
      const body = await upstream.read(pair.file, MAX_MANIFEST_BYTES, options);
      if (sha256Of(body) !== sha256) throw mismatch(pair, sha256Of(body), sha256);
      // A file that is not a v2 manifest is refused before it is stored.
      const manifest = parseChannelManifest(body);
      await store.put(fileKey, body, { expectedSha256: sha256 });
      this.#deps.hashes.noteManifest(pair.file, manifest);
    } else {
      const file = await upstream.open(pair.file, options);
      try {
        await store.put(fileKey, file.body, {
          expectedSha256: sha256,
          maxBytes: this.#deps.maxFileBytes,
        });
      } catch (err) {
        file.body.destroy();
        if (isCacherError(err, 'CARGO_CACHER_CHECKSUM_MISMATCH')) throw mismatch(pair, '?', sha256);
        throw err;
      }
    }
    await store.put(toolchainKey(pair.sidecar), sidecar);
    log.info({ path: pair.file, sha256 }, 'toolchains: stored a new pair');
  }
}

function mismatch(pair: PairPaths, actual: string, expected: string) {
  return Errors.CARGO_CACHER_CHECKSUM_MISMATCH(
    `upstream's ${pair.file} (sha256 ${actual}) does not match its sidecar (${expected}); not cached`,
  );
}

/** The sha256 of a stored blob, or `undefined` when it is not stored. */
async function hashStored(store: BlobStore, key: string): Promise<string | undefined> {
  const opened = await store.open(key);
  if (!opened) return undefined;
  const hash = createHash('sha256');
  await pipeline(opened.stream, hash);
  return hash.digest('hex');
}
