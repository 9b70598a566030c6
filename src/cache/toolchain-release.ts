/**
 * @module
 * `rustup/release-stable.toml`, which `rustup check` and self-update read to learn the newest
 * rustup: a small file with no sidecar. It is stored when it parses as TOML naming a `version`,
 * revalidated once the TTL has passed, and served stale while upstream fails.
 */
import { parse } from 'smol-toml';
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { RELEASE_FILE, toolchainKey } from '../registry/rustup-paths.ts';
import { sha256Of } from '../registry/sha256-sidecar.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { isUpstreamNotFound, type RustupUpstream } from '../upstream/rustup-dist.ts';
import { SingleFlight } from './single-flight.ts';
import type { PairOutcome } from './toolchain-pairs.ts';

const MAX_RELEASE_BYTES = 64 * 1024;

/** What {@link ReleaseFile} needs. */
export interface ReleaseFileDeps {
  store: BlobStore;
  upstream: RustupUpstream | undefined;
  ttlMs: number;
  log: AppLogger;
  now: () => number;
}

/** Holds and revalidates `release-stable.toml`. */
export class ReleaseFile {
  readonly #deps: ReleaseFileDeps;
  readonly #flight = new SingleFlight<PairOutcome>();
  /** When upstream last confirmed (or gave) the stored copy; 0 when never in this process. */
  #checkedAt = 0;
  #sha256: string | undefined;

  constructor(deps: ReleaseFileDeps) {
    this.#deps = deps;
  }

  /** Makes sure a copy is stored and fresh enough, and returns its bytes and how. */
  async get(): Promise<{ body: Buffer; outcome: PairOutcome }> {
    const key = toolchainKey(RELEASE_FILE);
    const { store, upstream, now, ttlMs } = this.#deps;
    const stored = await store.read(key);
    if (stored && (!upstream || now() - this.#checkedAt < ttlMs)) {
      return { body: stored, outcome: 'hit' };
    }
    if (!upstream) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${RELEASE_FILE} is not cached and no rustup upstream is used`,
      );
    }
    try {
      const outcome = await this.#flight.run(RELEASE_FILE, () => this.#refresh(upstream, stored));
      const body = await store.read(key);
      if (!body) throw Errors.CARGO_CACHER_STORAGE(`${RELEASE_FILE} vanished from storage`);
      return { body, outcome };
    } catch (err) {
      if (!stored || isUpstreamNotFound(err)) throw err;
      this.#deps.log.warn({ err }, `toolchains: serving the last good ${RELEASE_FILE}`);
      return { body: stored, outcome: 'stale' };
    }
  }

  async #refresh(upstream: RustupUpstream, stored: Buffer | undefined): Promise<PairOutcome> {
    const body = await upstream.read(
      RELEASE_FILE,
      MAX_RELEASE_BYTES,
      stored ? { attempts: 1 } : {},
    );
    checkRelease(body);
    this.#checkedAt = this.#deps.now();
    const sha256 = sha256Of(body);
    this.#sha256 ??= stored && sha256Of(stored);
    if (sha256 === this.#sha256) return 'revalidated';
    await this.#deps.store.put(toolchainKey(RELEASE_FILE), body);
    this.#sha256 = sha256;
    return 'miss';
  }
}

/** A release file is TOML with a `version` string; anything else is not stored. */
function checkRelease(body: Buffer): void {
  let version: unknown;
  try {
    version = (parse(body.toString('utf8')) as { version?: unknown }).version;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string') {
    throw Errors.CARGO_CACHER_UPSTREAM_INVALID(`upstream's ${RELEASE_FILE} names no version`);
  }
}
