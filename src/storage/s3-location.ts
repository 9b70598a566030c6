/**
 * @module
 * Where an S3 store lives (`--storage s3://bucket/prefix`, `--s3-endpoint`, `--s3-region`,
 * `--s3-path-style`) and the SDK client that reaches it. Credentials are never flags: the SDK's
 * default provider chain reads `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` with
 * `~/.aws/credentials`, web identity, ECS and instance roles, as every AWS tool does.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Errors } from '../errors.ts';
import { isSafeKey } from './blob-store.ts';

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

/** Builds the SDK client for a location. */
export function createS3Client(settings: S3Settings): S3Client {
  const config: S3ClientConfig = {
    forcePathStyle: settings.pathStyle,
    // A few quick retries for throttling and resets; longer outages surface as storage errors.
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: 10_000,
      // Idle, not total: a crate streams to a slow client for as long as it takes, and a read
      // idle this long resumes with a ranged GET (s3-read-stream.ts).
      socketTimeout: 60_000,
      // Every client download holds one connection to the bucket while it streams.
      httpAgent: { keepAlive: true, maxSockets: 256 },
      httpsAgent: { keepAlive: true, maxSockets: 256 },
    },
  };
  if (settings.region !== undefined) config.region = settings.region;
  if (settings.endpoint !== undefined) {
    config.endpoint = settings.endpoint;
    // S3-compatible servers need a region for signing but ignore which one.
    config.region ??= 'us-east-1';
    // The SDK's default CRC checksums use aws-chunked uploads that several S3-compatible
    // servers store verbatim (framing included); our own sha256 check covers integrity anyway.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return new S3Client(config);
}
