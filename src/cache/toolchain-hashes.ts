/**
 * @module
 * The sha256 an archive must have before it is stored, from the stored channel manifests that
 * list it. Archives live under `dist/YYYY-MM-DD/`, and so do the dated manifests that list them;
 * an undated manifest (`channel-rust-stable.toml`) says its date inside. So the hashes are
 * looked up per date: the manifests of that date are read from storage the first time one of
 * its archives is asked for, and the hashes of the last few dates are kept in memory. A manifest
 * stored while its date is held adds its hashes at once.
 */
import type { AppLogger } from '../logger.ts';
import { type ChannelManifest, parseChannelManifest } from '../registry/channel-manifest.ts';
import { pairOf, pathOfToolchainKey, toolchainKey } from '../registry/rustup-paths.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { type Catalogue, PAGE_ROWS } from './catalogue.ts';
import { LruMap } from './lru.ts';
import { SingleFlight } from './single-flight.ts';

/** Dates whose hashes are kept in memory (a stable manifest lists a few thousand archives). */
const DATES_KEPT = 16;

/** Keys after every real key with this prefix (keys are printable ASCII). */
const AFTER_PREFIX = '\x7f';

/** What the index reads. */
export interface ArchiveHashesDeps {
  store: BlobStore;
  catalogue: Catalogue;
  log: AppLogger;
}

/** Archive path → sha256, per date, from the manifests held. */
export class ArchiveHashes {
  readonly #deps: ArchiveHashesDeps;
  readonly #byDate = new LruMap<string, Map<string, string>>(DATES_KEPT);
  readonly #loads = new SingleFlight<Map<string, string>>();
  /** Undated manifest key → its date, once read. */
  readonly #undatedDates = new Map<string, string>();
  #undatedScanned = false;

  constructor(deps: ArchiveHashesDeps) {
    this.#deps = deps;
  }

  /** The sha256 the manifests held give `path` (`dist/2026-11-26/….tar.xz`), if any. */
  async expected(path: string): Promise<string | undefined> {
    const date = dateOf(path);
    if (date === undefined) return undefined;
    const hashes = this.#byDate.get(date) ?? (await this.#loads.run(date, () => this.#load(date)));
    return hashes.get(path);
  }

  /** Adds a manifest just stored under `path` (`dist/channel-rust-stable.toml`). */
  noteManifest(path: string, manifest: ChannelManifest): void {
    // A dated manifest is found by its directory; an undated one by the date it holds.
    if (path.startsWith('dist/channel-rust-')) {
      this.#undatedDates.set(toolchainKey(path), manifest.date);
    }
    const held = this.#byDate.get(manifest.date);
    if (held) for (const [archive, sha256] of manifest.hashes) held.set(archive, sha256);
  }

  async #load(date: string): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    for (const key of await this.#manifestKeysOf(date)) {
      const manifest = await this.#read(key);
      if (manifest?.date !== date) continue;
      for (const [archive, sha256] of manifest.hashes) hashes.set(archive, sha256);
    }
    this.#byDate.set(date, hashes);
    return hashes;
  }

  /** Stored manifests that may list archives of `date`: its dated ones and the undated ones. */
  async #manifestKeysOf(date: string): Promise<string[]> {
    const dated = this.#manifestRows(toolchainKey(`dist/${date}/channel-rust-`));
    if (!this.#undatedScanned) {
      this.#undatedScanned = true;
      for (const key of this.#manifestRows(toolchainKey('dist/channel-rust-'))) {
        const manifest = await this.#read(key);
        if (manifest) this.#undatedDates.set(key, manifest.date);
      }
    }
    const undated = [...this.#undatedDates].filter(([, of]) => of === date).map(([key]) => key);
    return [...dated, ...undated];
  }

  /** Keys of stored manifests (not their sidecars) starting with `prefix`. */
  #manifestRows(prefix: string): string[] {
    const keys: string[] = [];
    let after = prefix;
    for (;;) {
      const rows = this.#deps.catalogue.rowsBetween(after, `${prefix}${AFTER_PREFIX}`);
      for (const row of rows) {
        const path = pathOfToolchainKey(row.key);
        if (path !== undefined && pairOf(path)?.manifest) keys.push(row.key);
      }
      const last = rows.at(-1);
      if (!last || rows.length < PAGE_ROWS) return keys;
      after = last.key;
    }
  }

  async #read(key: string): Promise<ChannelManifest | undefined> {
    try {
      const body = await this.#deps.store.read(key);
      return body && parseChannelManifest(body);
    } catch (err) {
      this.#deps.log.warn({ err, key }, 'toolchains: a stored channel manifest cannot be read');
      return undefined;
    }
  }
}

/** The date directory of an archive path. */
function dateOf(path: string): string | undefined {
  return /^dist\/(\d{4}-\d{2}-\d{2})\//.exec(path)?.[1];
}
