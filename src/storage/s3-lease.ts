/**
 * @module
 * Fetch leases between instances sharing a bucket: a small object `<prefix>leases/<key>` says
 * "instance X is fetching this until T". The first instance to miss writes it and fetches; the
 * others poll for the finished object instead of downloading the same crate again.
 *
 * The lease is created with `If-None-Match: *` (and an expired one replaced with `If-Match`), which
 * AWS S3, MinIO and R2 honour, so exactly one writer wins. A probe at the first claim finds out
 * whether the store does; one that ignores the condition (s3rver) falls back to last-writer-wins:
 * every contender waits `settleMs` after writing, reads the lease back, and only the one whose
 * token it holds fetches. Either way the lease is an
 * optimisation: waiters give up after `waitMs` and fetch themselves, an expired lease is taken
 * over, and every put is verified and all-or-nothing whoever holds it.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { BlobLease } from './blob-store.ts';

/** Timings of the lease protocol, in milliseconds. */
export interface LeaseTiming {
  /** How long a lease holds: longer than a slow crate download. */
  ttlMs: number;
  /** How long a waiter waits for another instance's fetch before fetching itself. */
  waitMs: number;
  /** How often a waiter looks for the finished object. */
  pollMs: number;
  /** Pause between writing a lease and reading it back, for stores without conditional puts. */
  settleMs: number;
}

/** The defaults: a waiter waits at most a minute; clocks may differ by seconds, not minutes. */
export const DEFAULT_LEASE_TIMING: LeaseTiming = {
  ttlMs: 120_000,
  waitMs: 60_000,
  pollMs: 200,
  settleMs: 50,
};

/** What the lease object holds. */
interface LeaseRecord {
  token: string;
  owner: string;
  expiresAt: number;
  etag: string | undefined;
}

/** What {@link S3Leases} needs from the store. */
export interface S3LeasesOptions {
  client: S3Client;
  bucket: string;
  /** The store's key prefix (`''` or ending in `/`). */
  prefix: string;
  timing: LeaseTiming;
  now?: () => number;
}

const NOT_HELD: BlobLease = Object.freeze({
  published: false,
  held: false,
  release: async () => undefined,
});
const PUBLISHED: BlobLease = Object.freeze({
  published: true,
  held: false,
  release: async () => undefined,
});

/** Lease objects of one store. */
export class S3Leases {
  readonly #options: S3LeasesOptions;
  readonly #now: () => number;
  /** Who holds a lease, for whoever reads one while debugging. */
  readonly #owner = `${hostname()}/${process.pid}`;
  /** How the store treats `If-None-Match` on puts: probed once, at the first claim. */
  #conditions: Promise<ConditionSupport> | undefined;

  constructor(options: S3LeasesOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Claims `key`, or waits for whoever holds the claim. `exists` tells whether the blob has been
   * published. Failures of the lease objects themselves never fail the caller: it just fetches.
   */
  async acquire(key: string, exists: () => Promise<boolean>): Promise<BlobLease> {
    const leaseKey = `${this.#options.prefix}leases/${key}`;
    const token = randomUUID();
    const deadline = this.#now() + this.#options.timing.waitMs;
    try {
      for (let first = true; ; first = false) {
        // Publishing comes before releasing: a lease gone with no blob means the fetch failed.
        if (!first && (await exists())) return PUBLISHED;
        if (await this.#tryClaim(leaseKey, token)) {
          return { published: false, held: true, release: () => this.#release(leaseKey, token) };
        }
        if (this.#now() >= deadline) return NOT_HELD;
        await sleep(this.#options.timing.pollMs);
      }
    } catch {
      return NOT_HELD;
    }
  }

  async #tryClaim(leaseKey: string, token: string): Promise<boolean> {
    const current = await this.#read(leaseKey);
    if (current && current.expiresAt > this.#now()) return false;
    const { client, bucket, timing } = this.#options;
    const record = { token, owner: this.#owner, expiresAt: this.#now() + timing.ttlMs };
    const support = await this.#conditionSupport();
    const condition =
      current?.etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: current.etag };
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: leaseKey,
          Body: JSON.stringify(record),
          ContentType: 'application/json',
          ...(support !== 'refused' && condition),
        }),
      );
    } catch (err) {
      // 412: another instance wrote first; 409: it is writing right now.
      if (statusOf(err) === 412 || statusOf(err) === 409) return false;
      throw err;
    }
    // The store settled the race itself; otherwise the last writer wins, once all have written.
    if (support === 'honoured') return true;
    await sleep(timing.settleMs);
    return (await this.#read(leaseKey))?.token === token;
  }

  #conditionSupport(): Promise<ConditionSupport> {
    this.#conditions ??= probeConditions(this.#options);
    return this.#conditions;
  }

  async #read(leaseKey: string): Promise<LeaseRecord | undefined> {
    try {
      const { client, bucket } = this.#options;
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: leaseKey }));
      const parsed = JSON.parse((await got.Body?.transformToString()) ?? '') as LeaseRecord;
      if (typeof parsed.token !== 'string' || typeof parsed.expiresAt !== 'number')
        return undefined;
      return { ...parsed, etag: got.ETag };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      // An unreadable lease (a half-written one on a store without atomic puts) counts as none.
      if (err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** Deletes the lease if it is still ours (it may have expired and been taken over). */
  async #release(leaseKey: string, token: string): Promise<void> {
    try {
      if ((await this.#read(leaseKey))?.token !== token) return;
      const { client, bucket } = this.#options;
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: leaseKey }));
    } catch {
      // It expires by itself; the startup cleanup removes expired leases.
    }
  }
}

/**
 * What a store does with `If-None-Match: *` on a put: `honoured` (a second put of an existing key
 * fails with 412), `ignored` (it overwrites), or `refused` (the header itself is an error).
 */
type ConditionSupport = 'honoured' | 'ignored' | 'refused';

/** Puts one probe object twice with `If-None-Match: *` and sees what the store makes of it. */
async function probeConditions(options: S3LeasesOptions): Promise<ConditionSupport> {
  const { client, bucket, prefix } = options;
  const Key = `${prefix}leases/probe-${randomUUID()}`;
  const put = () =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: '', IfNoneMatch: '*' }));
  try {
    await put();
  } catch {
    return 'refused';
  }
  try {
    await put();
    return 'ignored';
  } catch (err) {
    return statusOf(err) === 412 ? 'honoured' : 'ignored';
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined);
  }
}

/** The HTTP status of an SDK error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}
