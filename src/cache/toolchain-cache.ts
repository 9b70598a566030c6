/**
 * @module
 * The toolchain cache: what rustup downloads from its dist server (`RUSTUP_DIST_SERVER`,
 * `RUSTUP_UPDATE_ROOT`), served from storage and fetched once from `--rustup-upstream`.
 *
 * - Channel manifests and rustup-init, each with its `.sha256`: stored and served as matching
 *   pairs, undated names revalidated after the TTL and served stale while upstream fails
 *   (`toolchain-pairs.ts`).
 * - Component archives: stored only once their sha256 matched a held manifest (or their
 *   sidecar), downloaded once and streamed to every client as they arrive
 *   (`toolchain-archives.ts`, `toolchain-spool.ts`).
 * - `rustup/release-stable.toml`: revalidated, stale when upstream fails (`toolchain-release.ts`).
 * - Anything else below `dist/` or `rustup/` (signatures, the pre-v2 `channel-rust-*.sha256`,
 *   installers): passed through, not stored.
 *
 * Everything is stored through the tracked store under `toolchains/<dist path>`, so the
 * catalogue, `--max-size`, expiration and verify cover it.
 */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { type ChannelManifest, parseChannelManifest } from '../registry/channel-manifest.ts';
import {
  type PairPaths,
  pairOf,
  parseRustupPath,
  releaseOfArchive,
  toolchainKey,
} from '../registry/rustup-paths.ts';
import type { BlobStore, PositionalBlob } from '../storage/blob-store.ts';
import type { RustupUpstream } from '../upstream/rustup-dist.ts';
import type { Catalogue } from './catalogue.ts';
import { ToolchainArchives } from './toolchain-archives.ts';
import { ArchiveHashes } from './toolchain-hashes.ts';
import { type PairOutcome, ToolchainPairs } from './toolchain-pairs.ts';
import { ReleaseFile } from './toolchain-release.ts';

/** Largest archive or rustup-init accepted (the largest real archives are a few hundred MB). */
export const MAX_TOOLCHAIN_FILE_BYTES = 4 * 1024 ** 3;

/** What {@link ToolchainCache} needs. */
export interface ToolchainCacheDeps {
  store: BlobStore;
  catalogue: Catalogue;
  /** Absent with `--offline` or `--rustup-upstream none`: only what is held is served. */
  upstream: RustupUpstream | undefined;
  /** How long an undated manifest, rustup-init or release file is trusted before revalidation. */
  ttlMs: number;
  /** The local state directory (`-i`): downloads are spooled below its `tmp/`. */
  stateDir: string;
  log: AppLogger;
  now?: () => number;
  maxFileBytes?: number;
}

/** A toolchain file ready to send. */
export interface ToolchainLookup {
  /** Large archives come read at positions (see `server/file-pump.ts`); the rest as streams. */
  body: Readable | Buffer | PositionalBlob;
  size: number | undefined;
  outcome: PairOutcome;
  upstreamBytes: number;
  /** Dated paths never change: clients may keep them. */
  immutable: boolean;
  /** False when passed through without being stored. */
  stored: boolean;
  /** For an archive, the release it belongs to (`1.99.0 (2026-11-26)`), for statistics. */
  release?: string;
}

/** See the module comment. */
export class ToolchainCache {
  readonly #deps: ToolchainCacheDeps;
  readonly #pairs: ToolchainPairs;
  readonly #archives: ToolchainArchives;
  readonly #release: ReleaseFile;

  constructor(deps: ToolchainCacheDeps) {
    this.#deps = deps;
    const now = deps.now ?? Date.now;
    const maxFileBytes = deps.maxFileBytes ?? MAX_TOOLCHAIN_FILE_BYTES;
    const { store, catalogue, upstream, log, ttlMs } = deps;
    const hashes = new ArchiveHashes({ store, catalogue, log });
    this.#pairs = new ToolchainPairs({
      store,
      catalogue,
      upstream,
      hashes,
      ttlMs,
      maxFileBytes,
      log,
      now,
    });
    this.#archives = new ToolchainArchives({
      store,
      catalogue,
      upstream,
      hashes,
      spoolDir: join(deps.stateDir, 'tmp', 'toolchain-spool'),
      maxBytes: maxFileBytes,
      log,
    });
    this.#release = new ReleaseFile({ store, upstream, ttlMs, log, now });
  }

  /** The upstream, when one is used. */
  get upstream(): RustupUpstream | undefined {
    return this.#deps.upstream;
  }

  /** Downloads and revalidations running now. */
  get inFlight(): number {
    return this.#pairs.inFlight + this.#archives.inFlight;
  }

  /** Opens what a client asked for (`/dist/…`, `/rustup/…`); a bad path is a 400. */
  async open(urlPath: string): Promise<ToolchainLookup> {
    const path = parseRustupPath(urlPath);
    switch (path.kind) {
      case 'pair':
        return this.#openPair(path.pair, path.role);
      case 'archive': {
        const found = await this.#archives.open(path.path);
        const release = releaseOfArchive(path.path);
        return { ...found, immutable: true, stored: found.verified, ...(release && { release }) };
      }
      case 'release': {
        const { body, outcome } = await this.#release.get();
        return {
          body,
          size: body.length,
          outcome,
          upstreamBytes: 0,
          immutable: false,
          stored: true,
        };
      }
      case 'pass-through':
        return this.#passThrough(path.path);
    }
  }

  /**
   * The manifest of a channel path (`dist/channel-rust-stable.toml`), held and fresh enough, for
   * the mirror; `outcome` says whether it changed (`miss`).
   */
  async manifest(path: string): Promise<{ manifest: ChannelManifest; outcome: PairOutcome }> {
    const pair = pairOf(path);
    if (!pair?.manifest) throw Errors.CARGO_CACHER_BAD_REQUEST(`${path} is not a channel manifest`);
    const outcome = await this.#pairs.ensure(pair);
    const body = await this.#deps.store.read(toolchainKey(pair.file));
    if (!body) {
      this.#pairs.forget(pair);
      throw Errors.CARGO_CACHER_STORAGE(`${pair.file} vanished from storage`);
    }
    return { manifest: parseChannelManifest(body), outcome };
  }

  /** Resolves once the downloads under way are stored (or failed): before storage closes. */
  idle(): Promise<void> {
    return this.#archives.idle();
  }

  /** Stores an archive for a job; see {@link ToolchainArchives.fetch}. */
  fetchArchive(path: string, sha256: string): Promise<{ fetched: boolean; bytes: number }> {
    return this.#archives.fetch(path, sha256);
  }

  /**
   * Serves a member of a pair. A member found missing (evicted, quarantined) makes the pair
   * count as not held, and it is fetched again, once.
   */
  async #openPair(pair: PairPaths, role: 'file' | 'sidecar'): Promise<ToolchainLookup> {
    const key = toolchainKey(role === 'file' ? pair.file : pair.sidecar);
    for (let round = 1; ; round++) {
      const outcome = await this.#pairs.ensure(pair);
      const opened = await this.#deps.store.open(key);
      if (opened) {
        this.#deps.catalogue.noteServed(key, opened.size);
        return {
          body: opened.stream,
          size: opened.size,
          outcome,
          upstreamBytes: outcome === 'miss' ? opened.size : 0,
          immutable: !pair.mutable,
          stored: true,
        };
      }
      this.#pairs.forget(pair);
      if (round >= 2) throw Errors.CARGO_CACHER_STORAGE(`${key} vanished from storage`);
    }
  }

  async #passThrough(path: string): Promise<ToolchainLookup> {
    const { upstream } = this.#deps;
    if (!upstream) {
      throw Errors.CARGO_CACHER_NOT_CACHED_OFFLINE(
        `${path} is passed through from upstream, and no rustup upstream is used`,
      );
    }
    const file = await upstream.open(path, { attempts: 1 });
    return {
      body: file.body,
      size: file.size,
      outcome: 'miss',
      upstreamBytes: file.size ?? 0,
      immutable: false,
      stored: false,
    };
  }
}
