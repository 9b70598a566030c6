/**
 * @module
 * Where an S3 store lives (`--storage s3://bucket/prefix`, `--s3-endpoint`, `--s3-region`,
 * `--s3-path-style`), without the AWS SDK: it is loaded only when a bucket is used (about 25 MB
 * of resident memory that a proxy on a local directory does not pay).
 */
import { Errors } from '../errors.ts';
import { isSafeKey } from './blob-store.ts';
import type { S3BlobStore } from './s3-blob-store.ts';

/** An S3 (or S3-compatible) location, as the flags gave it. */
export interface S3Settings {
  bucket: string;
  /** Key prefix every object gets: `''` or ending in `/` (`cache/`). */
  prefix: string;
  /** `--s3-endpoint`: an S3-compatible server (MinIO, Ceph RGW, R2); `undefined`: AWS. */
  endpoint: string | undefined;
  /** `--s3-region`; `undefined`: the SDK's own lookup (`AWS_REGION`, the profile). */
  region: string | undefined;
  /** `--s3-path-style`: `endpoint/bucket/key` instead of `bucket.endpoint/key`. */
  pathStyle: boolean;
}

/** Bucket names as S3 allows them (3-63 characters, lowercase, digits, dots, hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses `s3://bucket` or `s3://bucket/some/prefix` into bucket and prefix.
 *
 * @example
 * parseS3Url('s3://crates/cache') // { bucket: 'crates', prefix: 'cache/' }
 */
export function parseS3Url(value: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(value);
  const bucket = match?.[1];
  if (bucket === undefined || !BUCKET.test(bucket)) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `--storage must be s3://bucket or s3://bucket/prefix with a valid bucket name, got "${value}"`,
    );
  }
  const path = (match?.[2] ?? '').replace(/^\/+|\/+$/g, '');
  // The prefix joins keys made of safe names, so it follows the same rule.
  if (path !== '' && !isSafeKey(path)) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `the prefix of --storage may use letters, digits, "_.+-" and "/", got "${path}"`,
    );
  }
  return { bucket, prefix: path === '' ? '' : `${path}/` };
}

/** How the location is shown in logs: `s3://bucket/prefix/ at http://minio:9000`. */
export function describeS3(settings: S3Settings): string {
  const url = `s3://${settings.bucket}/${settings.prefix}`;
  return settings.endpoint === undefined ? url : `${url} at ${settings.endpoint}`;
}

/** Opens the bucket store, loading the AWS SDK now (see the module comment). */
export async function openS3Store(settings: S3Settings): Promise<S3BlobStore> {
  const { S3BlobStore } = await import('./s3-blob-store.ts');
  return new S3BlobStore({ settings });
}
