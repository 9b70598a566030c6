/**
 * @module
 * The stores the blob store contract runs against: FsBlobStore on a temp directory and
 * S3BlobStore on s3rver, each test case on a fresh directory or key prefix.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { createS3Client } from '../../src/storage/s3-client.ts';
import { startS3, type TestS3 } from './s3.ts';
import { makeTempDir, removeTempDir } from './temp-dir.ts';

/** One backing (a directory, a bucket prefix) and how to open stores on it. */
export interface Backing {
  /** A store; several on one backing act like several instances sharing it. */
  open(options?: { staleAfterMs?: number }): Promise<BlobStore>;
  /** Leaves what a crashed put leaves: a temp file or temp object. */
  plantLeftover(): Promise<void>;
  /** Temp files or objects present now. */
  leftovers(): Promise<number>;
}

/** A kind of store under test. */
export interface Backend {
  name: string;
  /** Whether a second store on the same backing waits for another's lease. */
  sharedLeases: boolean;
  backing(): Promise<Backing>;
}

/** The two backends, with `start()` and `stop()` for `before` and `after` hooks. */
export function createBackends() {
  let s3: TestS3;
  let raw: S3Client;
  const cleanups: (() => Promise<void>)[] = [];
  let prefixes = 0;

  const fsBackend: Backend = {
    name: 'FsBlobStore',
    sharedLeases: false,
    async backing() {
      const root = await makeTempDir('contract-fs');
      cleanups.push(() => removeTempDir(root));
      return {
        async open() {
          const store = new FsBlobStore(root);
          await store.init();
          return store;
        },
        plantLeftover: () => writeFile(join(root, 'tmp', 'crashed.tmp'), 'half a crate'),
        leftovers: async () => (await readdir(join(root, 'tmp'))).length,
      };
    },
  };

  const s3Backend: Backend = {
    name: 'S3BlobStore',
    sharedLeases: true,
    async backing() {
      prefixes += 1;
      const prefix = `case-${prefixes}/`;
      return {
        async open(options = {}) {
          const store = new S3BlobStore({
            settings: s3.settings(prefix),
            listPageSize: 3,
            queueSize: 1,
            lease: { waitMs: 2_000, pollMs: 50, settleMs: 20 },
            ...options,
          });
          await store.init();
          cleanups.push(() => store.close());
          return store;
        },
        async plantLeftover() {
          const Key = `${prefix}tmp/crashed-upload`;
          await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: 'half a crate' }));
        },
        leftovers: () => countS3Objects(s3, `${prefix}tmp/`),
      };
    },
  };

  return {
    all: [fsBackend, s3Backend],
    async start() {
      s3 = await startS3();
      raw = createS3Client(s3.settings());
    },
    async stop() {
      for (const cleanup of cleanups.reverse()) await cleanup();
      raw.destroy();
      await s3.close();
    },
  };
}

async function countS3Objects(s3: TestS3, prefix: string): Promise<number> {
  const dir = join(s3.directory, s3.bucket, ...prefix.split('/').filter(Boolean));
  const names = await readdir(dir).catch(() => []);
  return names.filter((name) => name.endsWith('._S3rver_object')).length;
}
