/**
 * @module
 * Reading a bundle, a directory or a `.tar`, as its manifest and then its files one at a time,
 * streamed. A tar is read in one pass, so its first file must be `manifest.json` (`export`
 * writes it first); a directory is read in the manifest's order (index files, then crates).
 */
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { Errors } from '../errors.ts';
import {
  type BundleFile,
  type BundleManifest,
  MANIFEST_FILE,
  parseBundleManifest,
} from '../registry/bundle-manifest.ts';
import { mapAhead } from './bundle-read-ahead.ts';

/** One file of a bundle. Read its {@link stream} once, or {@link skip} it. */
export interface BundleEntry {
  /** Its path in the bundle (a store key, unless the bundle was tampered with). */
  path: string;
  /** Its size in the bundle (the tar header's, or the file's on disk). */
  size: number;
  /** False for anything but a regular file (a link, a device): never read. */
  regular: boolean;
  stream(): Readable;
  /** Reads it whole (small files: one read instead of a stream), up to `limit` bytes and one more. */
  read(limit: number): Promise<Buffer>;
  skip(): void;
}

/** An opened bundle. */
export interface OpenedBundle {
  manifest: BundleManifest;
  /** The files after the manifest. Throws (after the files it could read) when the tar is damaged. */
  entries(): AsyncIterable<BundleEntry>;
  /** Lets go of the file (also when the entries were not all read). */
  close(): Promise<void>;
}

/** Files of a directory bundle read ahead of the one being imported. */
const READ_AHEAD = 16;
/** Files up to this size are read whole (the import stores them in one write). */
const WHOLE_READ_BYTES = 1024 * 1024;

/** The largest manifest read (a bundle of a million files has one of about 150 MB). */
const MAX_MANIFEST_BYTES = 1024 * 1024 * 1024;

/** Opens a bundle directory or tar file and reads its manifest. */
export async function openBundle(path: string): Promise<OpenedBundle> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (err) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`import: ${path}: ${(err as Error).message}`);
  }
  return isDirectory ? openDirectory(path) : openTar(path);
}

async function openDirectory(dir: string): Promise<OpenedBundle> {
  const manifestPath = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(
      `${manifestPath}: ${(err as Error).message}: not a bundle`,
    );
  }
  const manifest = parseBundleManifest(text, manifestPath);
  return {
    manifest,
    entries: () => directoryEntries(dir, manifest),
    close: async () => {},
  };
}

/** The manifest's files that are on disk; the import reports the others missing. */
async function* directoryEntries(
  dir: string,
  manifest: BundleManifest,
): AsyncGenerator<BundleEntry> {
  const look = (file: BundleFile) => lookAt(dir, file);
  for await (const entry of mapAhead(manifest.files, READ_AHEAD, look)) {
    if (entry !== undefined) yield entry;
  }
}

/**
 * A file of a bundle directory, read already when the manifest says it is small (a byte more
 * than it says, so a longer one shows); `undefined` when it is not there.
 */
async function lookAt(dir: string, file: BundleFile): Promise<BundleEntry | undefined> {
  const onDisk = join(dir, file.path);
  const listedSize = file.size;
  const info = await stat(onDisk).catch(() => undefined);
  if (info === undefined) return undefined;
  const regular = info.isFile();
  const early =
    regular && listedSize <= WHOLE_READ_BYTES
      ? await readStart(onDisk, Math.min(info.size, listedSize + 1))
      : undefined;
  return {
    path: file.path,
    size: info.size,
    regular,
    stream: () => createReadStream(onDisk),
    read: async (limit) =>
      (early ?? (await readStart(onDisk, Math.min(info.size, limit + 1)))).subarray(0, limit + 1),
    skip: () => {},
  };
}

/** The first `length` bytes of a file (fewer when it is shorter). */
async function readStart(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const body = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(body, filled, length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return body.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

async function openTar(file: string): Promise<OpenedBundle> {
  const tar = readTar(file);
  let manifest: BundleManifest;
  try {
    manifest = await readTarManifest(file, tar);
  } catch (err) {
    await tar.return(undefined);
    throw err;
  }
  return {
    manifest,
    entries: () => remaining(tar),
    close: async () => {
      await tar.return(undefined);
    },
  };
}

async function readTarManifest(
  file: string,
  tar: AsyncGenerator<BundleEntry>,
): Promise<BundleManifest> {
  let first: IteratorResult<BundleEntry>;
  try {
    first = await tar.next();
  } catch (err) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(
      `${file}: not a readable tar file (${(err as Error).message})`,
    );
  }
  if (first.done || first.value.path !== MANIFEST_FILE || !first.value.regular) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(
      `${file}: its first file is not ${MANIFEST_FILE}: not a bundle made by cargo-cacher export`,
    );
  }
  if (first.value.size > MAX_MANIFEST_BYTES) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`${file}: ${MANIFEST_FILE} is too large`);
  }
  const text = (await first.value.read(MAX_MANIFEST_BYTES)).toString('utf8');
  return parseBundleManifest(text, `${file}:${MANIFEST_FILE}`);
}

/** The rest of a generator, without closing it when the loop over it stops early. */
async function* remaining(tar: AsyncGenerator<BundleEntry>): AsyncGenerator<BundleEntry> {
  for (let next = await tar.next(); !next.done; next = await tar.next()) yield next.value;
}

/**
 * The entries of a tar file, one at a time: the parser reads on only once the previous entry's
 * bytes were consumed (or skipped), so memory stays flat at any size. Directory entries (a tar
 * re-made by hand) are passed over; a damaged or truncated tar throws once its readable entries
 * were given out, and the entry being read then ends short (its checksum refuses it).
 */
async function* readTar(file: string): AsyncGenerator<BundleEntry> {
  const parser = new Parser({ strict: true });
  const source = createReadStream(file);
  const pending: ReadEntry[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const fail = (err: Error) => {
    failure ??= err;
    notify();
  };
  parser.on('entry', (entry: ReadEntry) => {
    pending.push(entry);
    notify();
  });
  parser.on('end', () => {
    ended = true;
    notify();
  });
  parser.on('error', fail);
  source.on('error', fail);
  source.pipe(parser as unknown as NodeJS.WritableStream);
  try {
    for (;;) {
      const entry = pending.shift();
      if (entry !== undefined) {
        if (entry.type !== 'Directory') yield tarEntry(entry);
        // Whatever the reader left unread is skipped, so the parser goes on.
        entry.resume();
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    source.destroy();
  }
}

function tarEntry(entry: ReadEntry): BundleEntry {
  return {
    path: entry.path.replace(/^(?:\.\/)+/, ''),
    size: entry.size,
    regular: entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile',
    stream: () => Readable.from(entry),
    read: (limit) => readAll(entry, limit),
    skip: () => {
      entry.resume();
    },
  };
}

/** Reads a stream whole, up to `limit` bytes and one more (so a longer one is seen longer). */
export async function readAll(stream: AsyncIterable<unknown>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > limit) break;
  }
  return Buffer.concat(chunks);
}
