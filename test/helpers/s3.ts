/**
 * @module
 * An S3-compatible server for tests: s3rver, in this process, on 127.0.0.1 port 0, storing in a
 * temp directory, with one bucket. The credentials are s3rver's fixed pair, given to the SDK
 * through the standard environment variables, the way production gets them.
 */
import S3rver from 's3rver';
import type { S3Settings } from '../../src/storage/s3-location.ts';
import { makeTempDir, removeTempDir } from './temp-dir.ts';

/** A running s3rver. */
export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** Where s3rver keeps the objects. */
  directory: string;
  /** Settings for an {@link S3BlobStore} on the bucket, under `prefix`. */
  settings(prefix?: string): S3Settings;
  /** `--storage` and friends, for CLI tests. */
  flags(prefix?: string): string[];
  close(): Promise<void>;
}

/** The one access key s3rver accepts. */
const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

/**
 * Points the SDK's default credential chain at s3rver's pair for this process (and the child
 * processes it starts), whatever the developer's own AWS setup says.
 */
export function useS3rverCredentials(): void {
  Object.assign(process.env, S3RVER_CREDENTIALS);
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  // The SDK announces that its 2027 releases will need Node 22; tests need not say so each run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}

/** Starts s3rver with bucket `bucket`. Call `close()` in an `after` hook. */
export async function startS3(bucket = 'crates'): Promise<TestS3> {
  useS3rverCredentials();
  const directory = await makeTempDir('s3rver');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const settings = (prefix = ''): S3Settings => ({
    bucket,
    prefix,
    endpoint,
    region: 'us-east-1',
    pathStyle: true,
  });
  return {
    endpoint,
    bucket,
    directory,
    settings,
    flags: (prefix = '') => [
      '--storage',
      `s3://${bucket}/${prefix}`,
      '--s3-endpoint',
      endpoint,
      '--s3-path-style',
    ],
    async close() {
      // Keep-alive connections of clients that were not closed must not hold the server open.
      server.httpServer?.closeAllConnections();
      await server.close();
      await removeTempDir(directory);
    },
  };
}
