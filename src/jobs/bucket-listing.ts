/**
 * @module
 * One listing of a shared bucket a day, for all the instances on it. Each instance keeps its own
 * catalogue (under its `-i`), and each reconciles it daily; listing the whole bucket once per
 * instance would cost a LIST per 1,000 objects each time. So the first instance whose reconcile
 * is due takes a lease, lists the bucket once and publishes the listing as one object
 * (`catalogue/listing.ndjson.gz`: a header line, then one line per object in key order); every
 * instance, itself included, reconciles from that object while it is less than a day old.
 */
import { createInterface } from 'node:readline';
import { pipeline, Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { ListedBlob } from '../cache/catalogue.ts';
import type { BlobStore } from '../storage/blob-store.ts';

/** Where the shared listing is kept in the bucket. */
export const LISTING_KEY = 'catalogue/listing.ndjson.gz';

/** The areas listed (the reconcile's). */
const PREFIXES = ['crates', 'index', 'toolchains'];

/** A listing to reconcile from. */
export interface ListingSource {
  /** The blobs below `prefix/`, in key order. */
  listing(prefix: string): AsyncIterable<ListedBlob>;
  /** When the listing began: rows written since are not dropped for missing from it. */
  listedAt: number;
}

/** The first line of the listing object. */
interface ListingHeader {
  version: 1;
  listedAt: number;
}

/**
 * The bucket's shared listing: the published one while it is younger than `maxAgeMs`, else a
 * new one this instance lists and publishes under the lease. `undefined` when another instance
 * holds the lease (it is listing right now): try again later.
 */
export async function sharedListing(
  store: BlobStore,
  options: { now: () => number; maxAgeMs: number },
): Promise<ListingSource | undefined> {
  const startedAt = options.now();
  const fresh = await publishedListing(store, startedAt - options.maxAgeMs);
  if (fresh) return fresh;
  const lease = await store.lease(LISTING_KEY);
  try {
    // Another instance published one while we waited: made since we began, it will do.
    if (lease.published) return await publishedListing(store, startedAt);
    if (!lease.held) return undefined;
    await publishListing(store, startedAt);
  } finally {
    await lease.release();
  }
  return publishedListing(store, startedAt);
}

/** Lists the areas of the bucket and publishes the listing (gzip, one line per object). */
export async function publishListing(store: BlobStore, listedAt: number): Promise<void> {
  async function* lines(): AsyncIterable<string> {
    const header: ListingHeader = { version: 1, listedAt };
    yield `${JSON.stringify(header)}\n`;
    for (const prefix of PREFIXES) {
      for await (const blob of store.list(prefix)) {
        yield `${JSON.stringify([blob.key, blob.size, Math.trunc(blob.mtimeMs)])}\n`;
      }
    }
  }
  const gzip = createGzip();
  // A listing that fails destroys `gzip` with its error, so the put fails and publishes
  // nothing; a put that fails destroys `gzip`, which ends the listing.
  pipeline(Readable.from(lines()), gzip, () => undefined);
  await store.put(LISTING_KEY, gzip);
}

/** The published listing, when there is one made at `notBefore` or later. */
async function publishedListing(
  store: BlobStore,
  notBefore: number,
): Promise<ListingSource | undefined> {
  const stat = await store.stat(LISTING_KEY);
  if (!stat) return undefined;
  const header = await readHeader(store);
  if (!header || header.listedAt < notBefore) return undefined;
  return {
    listedAt: header.listedAt,
    listing: (prefix) => readListing(store, prefix),
  };
}

async function readHeader(store: BlobStore): Promise<ListingHeader | undefined> {
  for await (const line of readLines(store)) {
    const header = JSON.parse(line) as Partial<ListingHeader>;
    return header.version === 1 && typeof header.listedAt === 'number'
      ? (header as ListingHeader)
      : undefined;
  }
  return undefined;
}

async function* readListing(store: BlobStore, prefix: string): AsyncIterable<ListedBlob> {
  let first = true;
  for await (const line of readLines(store)) {
    if (first) {
      first = false;
      continue;
    }
    const [key, size, mtimeMs] = JSON.parse(line) as [string, number, number];
    if (key.startsWith(`${prefix}/`)) yield { key, size, mtimeMs };
    else if (key > `${prefix}/`) return;
  }
}

/** The listing object's lines; the download is ended when the reader stops early. */
async function* readLines(store: BlobStore): AsyncIterable<string> {
  const opened = await store.open(LISTING_KEY);
  if (!opened) return;
  const text = createGunzip();
  pipeline(opened.stream, text, () => undefined);
  try {
    yield* createInterface({ input: text, crlfDelay: Number.POSITIVE_INFINITY });
  } finally {
    opened.stream.destroy();
    text.destroy();
  }
}
