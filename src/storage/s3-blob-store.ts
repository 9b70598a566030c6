/**
 * @module
 * The S3 {@link BlobStore}: blobs are objects below a key prefix in a bucket that any number of
 * instances may share. Writes stay verify-then-publish: a stream is uploaded under
 * `<prefix>tmp/<uuid>` while it is hashed, checked, and only then copied to its key in one
 * server-side CopyObject (atomic in S3: readers see the old object, none, or the whole new one),
 * so no instance ever reads a partial or unverified crate. Nothing is buffered whole: uploads go
 * in 5 MiB parts (lib-storage), reads stream the GetObject body.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Errors, isCacherError } from '../errors.ts';
import {
  type BlobLease,
  type BlobStat,
  type BlobStore,
  isSafeKey,
  type OpenedBlob,
  type PutOptions,
  type PutResult,
} from './blob-store.ts';
import { checkExpectedSha256, createMeasure } from './measure.ts';
import { createS3Client } from './s3-client.ts';
import { DEFAULT_LEASE_TIMING, type LeaseTiming, S3Leases, statusOf } from './s3-lease.ts';
import { abortStaleUploads, type ListedObject, listObjects } from './s3-listing.ts';
import { describeS3, type S3Settings } from './s3-location.ts';
import { createResumableStream } from './s3-read-stream.ts';

/** Areas below the prefix that are bookkeeping, not blobs. */
const TMP = 'tmp/';
const LEASES = 'leases/';

/** Options of {@link S3BlobStore}. */
export interface S3BlobStoreOptions {
  settings: S3Settings;
  /** A ready client (tests); default one built from `settings`. */
  client?: S3Client;
  /** Temp objects and leases older than this are removed by `cleanup()`; default 1 hour. */
  staleAfterMs?: number;
  lease?: Partial<LeaseTiming>;
  /** Objects per list request (S3's maximum is 1000). */
  listPageSize?: number;
  /** Multipart part size (S3's minimum is 5 MiB) and parts in flight per upload. */
  partSize?: number;
  queueSize?: number;
}

/** Copies of a temp object to its key made before a failure is reported (see `put`). */
const COPY_ATTEMPTS = 3;

/** A {@link BlobStore} on an S3 bucket (AWS, MinIO, Ceph RGW, R2, s3rver). */
export class S3BlobStore implements BlobStore {
  readonly location: string;
  /** Several instances may share a bucket. */
  readonly shared = true;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #options: S3BlobStoreOptions;
  readonly #leases: S3Leases;

  constructor(options: S3BlobStoreOptions) {
    this.#options = options;
    this.#client = options.client ?? createS3Client(options.settings);
    this.#bucket = options.settings.bucket;
    this.#prefix = options.settings.prefix;
    this.location = describeS3(options.settings);
    this.#leases = new S3Leases({
      client: this.#client,
      bucket: this.#bucket,
      prefix: this.#prefix,
      timing: { ...DEFAULT_LEASE_TIMING, ...options.lease },
    });
  }

  /** Checks that the bucket answers with these credentials; fails with one clear line if not. */
  async init(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
    } catch (cause) {
      const status = statusOf(cause);
      const reason = status === undefined ? (cause as Error).message : `HTTP ${status}`;
      throw Errors.CARGO_CACHER_INVALID_CONFIG(`cannot use storage ${this.location}: ${reason}`, {
        cause,
      });
    }
  }

  async read(key: string): Promise<Buffer | undefined> {
    const got = await this.#get(this.#objectKey(key));
    if (!got?.Body) return undefined;
    const bytes = await got.Body.transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async open(key: string): Promise<OpenedBlob | undefined> {
    const objectKey = this.#objectKey(key);
    const got = await this.#get(objectKey);
    if (!got?.Body) return undefined;
    const size = got.ContentLength ?? 0;
    const etag = got.ETag;
    const reopen = async (offset: number): Promise<Readable> => {
      const rest = await this.#get(objectKey, { Range: `bytes=${offset}-`, IfMatch: etag });
      if (!rest?.Body) throw Errors.CARGO_CACHER_STORAGE(`${key} vanished while being read`);
      return rest.Body as Readable;
    };
    return {
      stream: createResumableStream(got.Body as Readable, size, reopen),
      size,
      mtimeMs: got.LastModified?.getTime() ?? 0,
    };
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    const objectKey = this.#objectKey(key);
    try {
      const head = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: objectKey }),
      );
      return { size: head.ContentLength ?? 0, mtimeMs: head.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw storageError('stat', key, err);
    }
  }

  async put(key: string, source: Readable | Buffer, options: PutOptions = {}): Promise<PutResult> {
    const objectKey = this.#objectKey(key);
    if (Buffer.isBuffer(source)) return this.#putBuffer(key, objectKey, source, options);
    const tempKey = `${this.#prefix}${TMP}${randomUUID()}`;
    try {
      const result = await this.#upload(tempKey, source, options.maxBytes);
      checkExpectedSha256(result, options);
      const copy = new CopyObjectCommand({
        Bucket: this.#bucket,
        Key: objectKey,
        // The source is a uuid key: nothing in it needs more than plain percent-encoding.
        CopySource: `${this.#bucket}/${tempKey.split('/').map(encodeURIComponent).join('/')}`,
      });
      // Instances that missed the same crate publish the same verified bytes at once, and a
      // store may fail one copy of such a race (s3rver answers 500). When the object then holds
      // our bytes the put has happened all the same; when it does not yet (the winning copy is
      // still being written), the copy is made once more.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#client.send(copy);
          break;
        } catch (err) {
          if (await this.#holds(key, result)) break;
          if (attempt >= COPY_ATTEMPTS) throw err;
        }
      }
      return result;
    } catch (err) {
      source.destroy();
      throw isCacherError(err) ? err : storageError('store', key, err);
    } finally {
      await this.#deleteQuietly(tempKey);
    }
  }

  /** True when `key` holds bytes of this size and sha256 (read back and hashed). */
  async #holds(key: string, expected: PutResult): Promise<boolean> {
    try {
      const opened = await this.open(key);
      if (!opened || opened.size !== expected.size) {
        opened?.stream.destroy();
        return false;
      }
      const hash = createHash('sha256');
      await pipeline(opened.stream, hash);
      return hash.digest('hex') === expected.sha256;
    } catch {
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.#objectKey(key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
    } catch (err) {
      if (statusOf(err) !== 404) throw storageError('delete', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string } & BlobStat> {
    const base = prefix.replace(/\/+$/, '');
    const listPrefix = base === '' ? this.#prefix : `${this.#objectKey(base)}/`;
    // Keys come in byte order (AWS S3's UTF-8 binary order), each once. Some S3-compatible
    // stores (s3rver) page by another order and repeat keys of earlier pages: skip repeats.
    const seen = new Set<string>();
    for await (const object of this.#listObjects(listPrefix)) {
      const key = object.key.slice(this.#prefix.length);
      // Like the filesystem store's tmp/ directory, bookkeeping is not listed.
      if (base === '' && (key.startsWith(TMP) || key.startsWith(LEASES))) continue;
      if (seen.has(key)) continue;
      // Repeats come from the page before: a few pages' keys are all that need remembering.
      if (seen.size >= 4096) seen.clear();
      seen.add(key);
      yield { key, size: object.size, mtimeMs: object.mtimeMs };
    }
  }

  /**
   * Removes temp objects and leases older than `staleAfterMs`. Younger ones may belong to an
   * upload another instance is running right now, so they are left alone.
   */
  async cleanup(): Promise<number> {
    const staleAfterMs = this.#options.staleAfterMs ?? 3_600_000;
    const olderThan = Date.now() - staleAfterMs;
    let removed = 0;
    for (const area of [TMP, LEASES]) {
      for await (const object of this.#listObjects(`${this.#prefix}${area}`)) {
        if (object.mtimeMs >= olderThan) continue;
        await this.#deleteQuietly(object.key);
        removed += 1;
      }
    }
    return (
      removed + (await abortStaleUploads(this.#client, this.#bucket, this.#prefix + TMP, olderThan))
    );
  }

  async lease(key: string): Promise<BlobLease> {
    return this.#leases.acquire(
      this.#checkKey(key),
      async () => (await this.stat(key)) !== undefined,
    );
  }

  async close(): Promise<void> {
    // Only a client this store built is its to close; a given one belongs to the caller.
    if (!this.#options.client) this.#client.destroy();
  }

  /** Small blobs (index files): verified in memory, then one PutObject (atomic in S3). */
  async #putBuffer(
    key: string,
    objectKey: string,
    body: Buffer,
    options: PutOptions,
  ): Promise<PutResult> {
    if (options.maxBytes !== undefined && body.length > options.maxBytes) {
      throw Errors.CARGO_CACHER_BODY_TOO_LARGE(`body exceeds ${options.maxBytes} bytes`);
    }
    const result = { size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
    checkExpectedSha256(result, options);
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.#bucket, Key: objectKey, Body: body }),
      );
    } catch (err) {
      throw storageError('store', key, err);
    }
    return result;
  }

  /** Uploads a stream while hashing it; a failed or oversized one leaves no temp object. */
  async #upload(tempKey: string, source: Readable, maxBytes?: number): Promise<PutResult> {
    const measure = createMeasure(maxBytes);
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key: tempKey, Body: measure.transform },
      partSize: this.#options.partSize ?? 5 * 1024 * 1024,
      queueSize: this.#options.queueSize ?? 4,
    });
    const uploading = upload.done();
    try {
      await Promise.all([pipeline(source, measure.transform), uploading]);
    } catch (err) {
      measure.transform.destroy();
      await upload.abort();
      await uploading.catch(() => undefined);
      throw err;
    }
    return measure.result();
  }

  async #get(
    objectKey: string,
    extra: { Range?: string; IfMatch?: string | undefined } = {},
  ): Promise<GetObjectCommandOutput | undefined> {
    try {
      return await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: objectKey, ...extra }),
      );
    } catch (err) {
      if (statusOf(err) === 404 && (err as Error).name !== 'NoSuchBucket') return undefined;
      throw storageError('read', objectKey.slice(this.#prefix.length), err);
    }
  }

  #listObjects(listPrefix: string): AsyncIterable<ListedObject> {
    const pageSize = this.#options.listPageSize ?? 1000;
    return listObjects(this.#client, this.#bucket, listPrefix, pageSize, (err) =>
      storageError('list', listPrefix, err),
    );
  }

  async #deleteQuietly(objectKey: string): Promise<void> {
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
    } catch {
      // A leftover temp object is invisible to readers and removed by a later cleanup().
    }
  }

  #checkKey(key: string): string {
    if (!isSafeKey(key)) {
      throw Errors.CARGO_CACHER_BAD_REQUEST(`invalid storage key: ${JSON.stringify(key)}`);
    }
    return key;
  }

  #objectKey(key: string): string {
    return `${this.#prefix}${this.#checkKey(key)}`;
  }
}

/** A failed S3 call as a catalogue error, with the SDK's error kept as the cause. */
function storageError(action: string, key: string, cause: unknown): Error {
  const status = statusOf(cause);
  const detail = `${(cause as Error).name ?? 'Error'}${status === undefined ? '' : ` (HTTP ${status})`}`;
  return Errors.CARGO_CACHER_STORAGE(`cannot ${action} ${key} in object storage: ${detail}`, {
    cause,
  });
}
