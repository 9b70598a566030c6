/**
 * @module
 * The filesystem {@link BlobStore}: blobs are files below the storage root, written to
 * `tmp/` first and renamed into place (rename is atomic within one filesystem).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors } from '../errors.ts';
import {
  type BlobLease,
  type BlobStat,
  type BlobStore,
  isSafeKey,
  type OpenedBlob,
  type PositionalBlob,
  type PutOptions,
  type PutResult,
} from './blob-store.ts';
import { checkExpectedSha256, createMeasure, measureBuffer, SOLE_WRITER_LEASE } from './measure.ts';

const TMP_DIR = 'tmp';

/**
 * Read sizes of blob streams. Large reads cost less CPU per byte, but each open stream holds
 * about two reads in memory (one read ahead, one in the socket's buffer), so the size shrinks
 * as more streams are open: in-flight reads stay near the budget in all, never below Node's
 * default for file streams.
 */
const READ_BUDGET_BYTES = 16 * 1024 * 1024;
const MAX_READ_BYTES = 256 * 1024;
const MIN_READ_BYTES = 64 * 1024;

/** A {@link BlobStore} on a local directory. */
export class FsBlobStore implements BlobStore {
  readonly location: string;
  /** One process per directory. */
  readonly shared = false;
  readonly #root: string;
  #openStreams = 0;

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
      const stream = createReadStream('', { fd: handle, highWaterMark: this.#readSize() });
      this.#openStreams++;
      stream.once('close', () => this.#openStreams--);
      return { stream, size: info.size, mtimeMs: info.mtimeMs };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async openPositional(key: string): Promise<PositionalBlob | undefined> {
    const handle = await ifExists(() => open(this.#path(key), 'r'));
    if (!handle) return undefined;
    try {
      const { size } = await handle.stat();
      return {
        size,
        read: async (buffer, position) =>
          (await handle.read(buffer, 0, buffer.length, position)).bytesRead,
        close: () => handle.close(),
      };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  #readSize(): number {
    const share = Math.floor(READ_BUDGET_BYTES / (2 * (this.#openStreams + 1)));
    return Math.max(MIN_READ_BYTES, Math.min(MAX_READ_BYTES, share));
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    const info = await ifExists(() => stat(this.#path(key)));
    return info?.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : undefined;
  }

  async put(key: string, source: Readable | Buffer, options: PutOptions = {}): Promise<PutResult> {
    const target = this.#path(key);
    const temp = join(this.#root, TMP_DIR, `${randomUUID()}.tmp`);
    if (Buffer.isBuffer(source)) return this.#putBuffer(source, temp, target, options);
    const digest = createMeasure(options.maxBytes);
    // Opened before the pipeline: a write stream destroyed while its own open is pending still
    // creates the file afterwards, and the temp file would outlive the rm below.
    const output = (await open(temp, 'wx')).createWriteStream();
    try {
      await pipeline(source, digest.transform, output);
      const result = digest.result();
      checkExpectedSha256(result, options);
      await moveIntoPlace(temp, target);
      return result;
    } catch (err) {
      output.destroy();
      await rm(temp, { force: true });
      throw err;
    }
  }

  /**
   * A body already in memory (index files, small records): one write, no stream. Every index
   * miss waits for this before it is answered, and the stream's machinery doubled its time.
   */
  async #putBuffer(body: Buffer, temp: string, target: string, options: PutOptions) {
    const result = measureBuffer(body, options.maxBytes);
    checkExpectedSha256(result, options);
    try {
      await writeFile(temp, body, { flag: 'wx' });
      await moveIntoPlace(temp, target);
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

  /** One process per directory: the single flight inside it is all the coordination needed. */
  async lease(_key: string): Promise<BlobLease> {
    return SOLE_WRITER_LEASE;
  }

  async close(): Promise<void> {
    // Files are opened per call: nothing is held between calls.
  }

  async *#walk(dir: string, keyPrefix: string): AsyncIterable<{ key: string } & BlobStat> {
    const entries = (await ifExists(() => readdir(dir, { withFileTypes: true }))) ?? [];
    // Key order: a directory sorts as its name plus '/', which is where its keys fall among
    // its siblings' (`a-b` < `a/x` < `ab`), so the whole walk comes out in byte order.
    const sortName = (entry: (typeof entries)[number]) =>
      entry.isDirectory() ? `${entry.name}/` : entry.name;
    entries.sort((a, b) => (sortName(a) < sortName(b) ? -1 : sortName(a) > sortName(b) ? 1 : 0));
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
    if (!isSafeKey(key)) {
      throw Errors.CARGO_CACHER_BAD_REQUEST(`invalid storage key: ${JSON.stringify(key)}`);
    }
    const path = join(this.#root, ...key.split('/'));
    if (!path.startsWith(this.#root + sep)) {
      throw Errors.CARGO_CACHER_BAD_REQUEST(`storage key escapes the root: ${key}`);
    }
    return path;
  }
}

/**
 * Creates a directory and its missing parents one level at a time. `mkdir({ recursive })` on
 * Node 20 never returns for a path below `/proc`, and a bad `-i` must fail with one line.
 */
/** Renames a finished temp file to its key, creating the directories only when they are missing. */
async function moveIntoPlace(temp: string, target: string): Promise<void> {
  try {
    await rename(temp, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dirname(target), { recursive: true });
    await rename(temp, target);
  }
}

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
