/**
 * @module
 * Writing a bundle: every file goes into a private staging directory next to the output, and the
 * bundle appears under its final name only once complete (a directory renamed into place, or a
 * `.tar` packed from the staging directory, manifest first, and linked into place). A failed or
 * interrupted export leaves nothing under the final name.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import {
  link,
  mkdir,
  mkdtemp,
  readdir,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors } from '../errors.ts';
import {
  type BundleFile,
  type BundleManifest,
  encodeBundleManifestParts,
  MANIFEST_FILE,
} from '../registry/bundle-manifest.ts';
import { packTar } from './bundle-tar.ts';

/** How a bundle is kept: a directory, or one `.tar` file. */
export type BundleFormat = 'dir' | 'tar';

/** `.tar` by the name given, a directory otherwise. */
export function bundleFormatOf(path: string): BundleFormat {
  return path.endsWith('.tar') ? 'tar' : 'dir';
}

/** What {@link BundleStaging.writeVerified} found. */
export type VerifiedWrite =
  | { ok: true; file: BundleFile }
  | { ok: false; sha256: string; size: number };

/** A bundle being written. Call {@link finish} or {@link discard} at the end. */
export class BundleStaging {
  readonly out: string;
  readonly format: BundleFormat;
  /** The private directory the files go to until {@link finish}. */
  readonly dir: string;
  readonly #madeDirs = new Set<string>();

  private constructor(out: string, dir: string) {
    this.out = out;
    this.format = bundleFormatOf(out);
    this.dir = dir;
  }

  /**
   * Checks that `out` can be written (a directory must not exist or be empty; a `.tar` must not
   * exist) and makes the staging directory beside it.
   */
  static async create(out: string): Promise<BundleStaging> {
    const target = resolve(out);
    await checkTarget(target, bundleFormatOf(target));
    await mkdir(dirname(target), { recursive: true });
    const dir = await mkdtemp(join(dirname(target), `.${basename(target)}.partial-`));
    return new BundleStaging(target, dir);
  }

  /** Writes a file whose bytes are in memory. */
  async writeFile(path: string, body: Buffer): Promise<void> {
    await writeFile(await this.#prepare(path), body);
  }

  /**
   * Streams `source` into the bundle while hashing it; when its sha256 is not `expectedSha256`
   * the file is removed again and the mismatch returned, so only verified bytes are kept.
   */
  async writeVerified(
    path: string,
    source: Readable,
    expectedSha256: string,
  ): Promise<VerifiedWrite> {
    const target = await this.#prepare(path);
    const hashing = new HashingStream();
    try {
      await pipeline(source, hashing, createWriteStream(target));
    } catch (err) {
      await rm(target, { force: true });
      throw err;
    }
    const sha256 = hashing.digest();
    if (sha256 === expectedSha256) return { ok: true, file: { path, size: hashing.size, sha256 } };
    await rm(target, { force: true });
    return { ok: false, sha256, size: hashing.size };
  }

  /** Writes the manifest and puts the bundle in place under its final name. */
  async finish(manifest: BundleManifest): Promise<void> {
    await pipeline(
      Readable.from(encodeBundleManifestParts(manifest)),
      createWriteStream(join(this.dir, MANIFEST_FILE)),
    );
    if (this.format === 'dir') {
      await this.#renameInto();
      return;
    }
    const packing = `${this.dir}.tar`;
    try {
      const paths = [MANIFEST_FILE, ...manifest.files.map((file) => file.path)];
      await packTar(this.dir, paths, packing, {
        mtime: new Date(manifest.createdAt),
        consume: true,
      });
      await linkInto(packing, this.out);
    } finally {
      await rm(packing, { force: true });
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Removes everything written so far. */
  async discard(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    if (this.format === 'tar') await rm(`${this.dir}.tar`, { force: true });
  }

  async #prepare(path: string): Promise<string> {
    const target = join(this.dir, path);
    const parent = dirname(target);
    if (!this.#madeDirs.has(parent)) {
      await mkdir(parent, { recursive: true });
      this.#madeDirs.add(parent);
    }
    return target;
  }

  /** The staging directory becomes the output (replacing it when it is an empty directory). */
  async #renameInto(): Promise<void> {
    try {
      await rename(this.dir, this.out);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
        throw Errors.CARGO_CACHER_INVALID_CONFIG(
          `${this.out} appeared while exporting: not replaced`,
        );
      }
      throw err;
    }
  }
}

/** Links `from` to `to`, failing rather than replacing a file that appeared meanwhile. */
async function linkInto(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw Errors.CARGO_CACHER_INVALID_CONFIG(`${to} appeared while exporting: not replaced`);
    }
    throw err;
  }
  await unlink(from);
}

async function checkTarget(target: string, format: BundleFormat): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(target)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (format === 'dir' && isDirectory && (await readdir(target)).length === 0) return;
  const what = format === 'dir' ? 'must not exist or be an empty directory' : 'already exists';
  throw Errors.CARGO_CACHER_INVALID_CONFIG(`export: ${target} ${what}`);
}

/** Passes bytes through, hashing and counting them. */
export class HashingStream extends Transform {
  readonly #hash = createHash('sha256');
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    this.push(chunk);
    callback();
  }

  /** The hex sha256 of everything passed (once the stream ended). */
  digest(): string {
    return this.#hash.digest('hex');
  }
}
