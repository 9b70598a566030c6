/**
 * @module
 * The AWS SDK client that reaches an S3 location. Credentials are never flags: the SDK's default
 * provider chain reads `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` with
 * `~/.aws/credentials`, web identity, ECS and instance roles, as every AWS tool does.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3Settings } from './s3-location.ts';

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
