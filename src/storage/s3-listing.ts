/**
 * @module
 * Listing a bucket prefix page by page, and aborting multipart uploads a crash left behind.
 */
import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  type ListObjectsCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';

/** One listed object. */
export interface ListedObject {
  /** The full object key, prefix included. */
  key: string;
  size: number;
  mtimeMs: number;
}

/**
 * Lists every object below `prefix`, `pageSize` per request, with ListObjects (v1) and markers.
 * v2's continuation tokens would do as well on S3, but s3rver 3.7 builds them with DES, which
 * OpenSSL 3 (Node 18+) refuses, so every truncated v2 listing fails there. Markers (the last key
 * seen) work on every S3-compatible store.
 */
export async function* listObjects(
  client: S3Client,
  bucket: string,
  prefix: string,
  pageSize: number,
  describeError: (err: unknown) => Error,
): AsyncGenerator<ListedObject> {
  let marker: string | undefined;
  do {
    let page: ListObjectsCommandOutput;
    try {
      page = await client.send(
        new ListObjectsCommand({
          Bucket: bucket,
          Prefix: prefix,
          MaxKeys: pageSize,
          ...(marker !== undefined && { Marker: marker }),
        }),
      );
    } catch (err) {
      throw describeError(err);
    }
    let last: string | undefined;
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      last = object.Key;
      yield {
        key: object.Key,
        size: object.Size ?? 0,
        mtimeMs: object.LastModified?.getTime() ?? 0,
      };
    }
    // NextMarker is only sent with a delimiter; without one the last key is the marker.
    marker = page.IsTruncated ? (page.NextMarker ?? last) : undefined;
  } while (marker !== undefined);
}

/**
 * Aborts multipart uploads below `prefix` started before `olderThan`: their parts are invisible
 * but billed. Best effort: some S3-compatible servers (s3rver) do not list uploads, and an S3
 * lifecycle rule (`AbortIncompleteMultipartUpload`) does the same job there.
 */
export async function abortStaleUploads(
  client: S3Client,
  bucket: string,
  prefix: string,
  olderThan: number,
): Promise<number> {
  let aborted = 0;
  try {
    const listed = await client.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }),
    );
    for (const upload of listed.Uploads ?? []) {
      if (upload.Key === undefined || upload.UploadId === undefined) continue;
      if ((upload.Initiated?.getTime() ?? 0) >= olderThan) continue;
      await client.send(
        new AbortMultipartUploadCommand({
          Bucket: bucket,
          Key: upload.Key,
          UploadId: upload.UploadId,
        }),
      );
      aborted += 1;
    }
  } catch {
    // Not supported here, or not allowed: the lifecycle rule in docs/SCALING.md covers it.
  }
  return aborted;
}
