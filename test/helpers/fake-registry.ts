/**
 * @module
 * The data behind the fake upstream: published crates and the index files derived from them.
 * No I/O; the HTTP server and the git index both read from here.
 */
import { createHash } from 'node:crypto';
import type { FakeCrateSpec } from './crate-pack.ts';
import { indexLine, indexPathOf, packCrate, sha256Hex } from './crate-pack.ts';

/** One published version, as tests see it. */
export interface PublishedCrate {
  name: string;
  version: string;
  /** Hex sha256 of {@link bytes}, the index `cksum`. */
  checksum: string;
  bytes: Buffer;
  /** Path below the index root, e.g. `fa/ke/fake-a`. */
  indexPath: string;
  yanked: boolean;
  /** The crate's line in its index file, without newline. */
  indexLine: string;
}

/** A file served below the index root, with its validators. */
export interface IndexFile {
  body: Buffer;
  /** Strong, quoted: `"<first 32 hex of sha256>"`. */
  etag: string;
  /** HTTP date of the last change. */
  lastModified: string;
}

interface Entry {
  spec: FakeCrateSpec;
  published: PublishedCrate;
}

/** Builds an {@link IndexFile} for a body that changed now. */
export function makeIndexFile(body: Buffer | string): IndexFile {
  const bytes = Buffer.from(body);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 32);
  return { body: bytes, etag: `"${hash}"`, lastModified: new Date().toUTCString() };
}

/** Published crates in publish order, plus one index file per crate name. */
export class FakeRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #files = new Map<string, IndexFile>();

  /** Packs and publishes one version; index lines are appended in publish order, like crates.io. */
  async publish(spec: FakeCrateSpec): Promise<PublishedCrate> {
    const key = keyOf(spec.name, spec.version);
    if (this.#entries.has(key)) throw new Error(`already published: ${key}`);
    const bytes = await packCrate(spec);
    // Packing yields, so a concurrent publish of the same version may have won meanwhile.
    if (this.#entries.has(key)) throw new Error(`already published: ${key}`);
    const checksum = sha256Hex(bytes);
    const published: PublishedCrate = {
      name: spec.name,
      version: spec.version,
      checksum,
      bytes,
      indexPath: indexPathOf(spec.name),
      yanked: spec.yanked ?? false,
      indexLine: indexLine(spec, checksum),
    };
    this.#entries.set(key, { spec: { ...spec }, published });
    this.#rebuild(published.indexPath);
    return { ...published };
  }

  /** Sets the `yanked` flag of a published version (the only field crates.io ever changes). */
  setYanked(name: string, version: string, yanked: boolean): PublishedCrate {
    const entry = this.#entry(name, version);
    entry.spec = { ...entry.spec, yanked };
    entry.published.yanked = yanked;
    entry.published.indexLine = indexLine(entry.spec, entry.published.checksum);
    this.#rebuild(entry.published.indexPath);
    return { ...entry.published };
  }

  /** A published version; throws when it does not exist, since tests name crates they made. */
  crate(name: string, version: string): PublishedCrate {
    return { ...this.#entry(name, version).published };
  }

  /** The exact name and version, or `undefined`: what the download routes look up. */
  find(name: string, version: string): PublishedCrate | undefined {
    return this.#entries.get(keyOf(name, version))?.published;
  }

  /** Every published version, in publish order. */
  crates(): PublishedCrate[] {
    return [...this.#entries.values()].map((entry) => ({ ...entry.published }));
  }

  /** The index file at `path` (lowercase, below the root), if any crate lives there. */
  indexFile(path: string): IndexFile | undefined {
    return this.#files.get(path);
  }

  /** Every index file by path: what the git index commits. */
  indexFiles(): Map<string, IndexFile> {
    return new Map(this.#files);
  }

  #entry(name: string, version: string): Entry {
    const entry = this.#entries.get(keyOf(name, version));
    if (!entry) throw new Error(`not published: ${keyOf(name, version)}`);
    return entry;
  }

  /**
   * Removes a published version: its index line and its file go (what crates.io does with a
   * malicious release). The index file goes too when it was the last version.
   */
  remove(name: string, version: string): PublishedCrate {
    const entry = this.#entry(name, version);
    this.#entries.delete(keyOf(name, version));
    this.#rebuild(entry.published.indexPath);
    return { ...entry.published };
  }

  #rebuild(path: string): void {
    const lines = [...this.#entries.values()]
      .filter((entry) => entry.published.indexPath === path)
      .map((entry) => entry.published.indexLine);
    if (lines.length === 0) this.#files.delete(path);
    else this.#files.set(path, makeIndexFile(`${lines.join('\n')}\n`));
  }
}

function keyOf(name: string, version: string): string {
  return `${name}@${version}`;
}
