/**
 * @module
 * The filesystem {@link BlobStore}: blobs are files below the storage root, written to
 * `tmp/` first and renamed into place (rename is atomic within one filesystem).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors } from '../errors.ts';
import type { BlobStat, BlobStore, OpenedBlob, PutOptions, PutResult } from './blob-store.ts';

/** Keys are made by cargo-cacher, but are checked anyway: no path can leave the root. */
const SAFE_KEY = /^(?:[A-Za-z0-9_.+-]+\/)*[A-Za-z0-9_.+-]+$/;
const TMP_DIR = 'tmp';

/** A {@link BlobStore} on a local directory. */
export class FsBlobStore implements BlobStore {
  readonly location: string;
  readonly #root: string;

  constructor(root: string) {
    this.#root = resolve(root);
    this.location = this.#root;
  }

  /** Creates the root and its temp directory; fails with a clear error when it cannot. */
  async init(): Promise<void> {
    try {
      await createDirectories(join(this.#root, TMP_DIR));
      const probe = join(this.#root, TMP_DIR, `.probe-${randomUUID()}`);
      const handle = await open(probe, 'w');
      await handle.close();
      await rm(probe, { force: true });
    } catch (cause) {
      throw Errors.CARGO_CACHER_INVALID_CONFIG(
        `cannot use storage directory ${this.#root}: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  async read(key: string): Promise<Buffer | undefined> {
    return ifExists(() => readFile(this.#path(key)));
  }

  async open(key: string): Promise<OpenedBlob | undefined> {
    const path = this.#path(key);
    const handle = await ifExists(() => open(path, 'r'));
    if (!handle) return undefined;
    try {
      const info = await handle.stat();
      // The stream owns the handle from here on and closes it when it ends or is destroyed.
      const stream = createReadStream('', { fd: handle, highWaterMark: 256 * 1024 });
      return { stream, size: info.size, mtimeMs: info.mtimeMs };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    const info = await ifExists(() => stat(this.#path(key)));
    return info?.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : undefined;
  }

  async put(key: string, source: Readable | Buffer, options: PutOptions = {}): Promise<PutResult> {
    const target = this.#path(key);
    const temp = join(this.#root, TMP_DIR, `${randomUUID()}.tmp`);
    const digest = createMeasure(options.maxBytes);
    try {
      const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
      await pipeline(input, digest.transform, createWriteStream(temp, { flags: 'wx' }));
      const result = digest.result();
      if (options.expectedSha256 !== undefined && result.sha256 !== options.expectedSha256) {
        throw Errors.CARGO_CACHER_CHECKSUM_MISMATCH(
          `sha256 ${result.sha256} does not match the index checksum ${options.expectedSha256}`,
        );
      }
      await mkdir(dirname(target), { recursive: true });
      await rename(temp, target);
      return result;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<{ key: string } & BlobStat> {
    const base = prefix.replace(/\/+$/, '');
    yield* this.#walk(base === '' ? this.#root : this.#path(base), base);
  }

  async cleanup(): Promise<number> {
    const dir = join(this.#root, TMP_DIR);
    const names = (await ifExists(() => readdir(dir))) ?? [];
    await Promise.all(names.map((name) => rm(join(dir, name), { force: true, recursive: true })));
    return names.length;
  }

  async *#walk(dir: string, keyPrefix: string): AsyncIterable<{ key: string } & BlobStat> {
    const entries = (await ifExists(() => readdir(dir, { withFileTypes: true }))) ?? [];
    for (const entry of entries) {
      const key = keyPrefix === '' ? entry.name : `${keyPrefix}/${entry.name}`;
      if (entry.isDirectory()) {
        if (key !== TMP_DIR) yield* this.#walk(join(dir, entry.name), key);
      } else if (entry.isFile()) {
        const info = await ifExists(() => stat(join(dir, entry.name)));
        if (info) yield { key, size: info.size, mtimeMs: info.mtimeMs };
      }
    }
  }

  #path(key: string): string {
    if (!SAFE_KEY.test(key) || key.split('/').some((part) => part === '.' || part === '..')) {
      throw Errors.CARGO_CACHER_BAD_REQUEST(`invalid storage key: ${JSON.stringify(key)}`);
    }
    const path = join(this.#root, ...key.split('/'));
    if (!path.startsWith(this.#root + sep)) {
      throw Errors.CARGO_CACHER_BAD_REQUEST(`storage key escapes the root: ${key}`);
    }
    return path;
  }
}

/** A pass-through that hashes and counts the bytes, failing once they pass `maxBytes`. */
function createMeasure(maxBytes = Number.POSITIVE_INFINITY) {
  const hash = createHash('sha256');
  let size = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > maxBytes) {
        callback(Errors.CARGO_CACHER_BODY_TOO_LARGE(`body exceeds ${maxBytes} bytes`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  return { transform, result: (): PutResult => ({ size, sha256: hash.digest('hex') }) };
}

/**
 * Creates a directory and its missing parents one level at a time. `mkdir({ recursive })` on
 * Node 20 never returns for a path below `/proc`, and a bad `-i` must fail with one line.
 */
async function createDirectories(dir: string): Promise<void> {
  const parent = dirname(dir);
  if (parent !== dir && (await ifExists(() => stat(parent))) === undefined) {
    await createDirectories(parent);
  }
  try {
    await mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Runs `fn`, mapping "no such file" to `undefined`. */
async function ifExists<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
