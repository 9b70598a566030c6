/**
 * @module
 * The object storage flags, shared by every command that opens storage (serve, prefetch, gc,
 * verify): `--storage s3://bucket/prefix`, `--s3-endpoint`, `--s3-region`, `--s3-path-style`.
 */
import { Option } from '@commander-js/extra-typings';
import { checkHttpUrl } from '../config.ts';
import { Errors } from '../errors.ts';
import { parseS3Url, type S3Settings } from '../storage/s3-location.ts';

/** The flags as commander parsed them. */
export interface StorageFlags {
  storage?: string | undefined;
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
  s3PathStyle?: boolean | undefined;
}

/**
 * The four flags, as options to add to a command (`.addOption(STORAGE_OPTIONS.storage())`), so
 * every command describes them the same way.
 */
export const STORAGE_OPTIONS = {
  storage: () =>
    new Option(
      '--storage <url>',
      'keep crates and index files in S3 (s3://bucket/prefix); -i then holds only local state',
    ),
  endpoint: () =>
    new Option('--s3-endpoint <url>', 'S3-compatible server (MinIO, Ceph, R2) instead of AWS'),
  region: () =>
    new Option('--s3-region <region>', 'bucket region (default: AWS_REGION or the AWS profile)'),
  pathStyle: () =>
    new Option('--s3-path-style', 'path-style requests (endpoint/bucket/key), as MinIO needs'),
};

/** The S3 location the flags name, or `undefined` for the filesystem store. */
export function s3SettingsFromFlags(flags: StorageFlags): S3Settings | undefined {
  if (flags.storage === undefined) {
    if (flags.s3Endpoint !== undefined || flags.s3Region !== undefined || flags.s3PathStyle) {
      throw Errors.CARGO_CACHER_INVALID_CONFIG('--s3-* flags need --storage s3://bucket/prefix');
    }
    return undefined;
  }
  const { bucket, prefix } = parseS3Url(flags.storage);
  return {
    bucket,
    prefix,
    endpoint: flags.s3Endpoint && checkHttpUrl('--s3-endpoint', flags.s3Endpoint),
    region: flags.s3Region,
    pathStyle: flags.s3PathStyle === true,
  };
}
