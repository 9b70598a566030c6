/**
 * @module
 * How a cached index file is stored: one JSON line of metadata, then the upstream body byte for
 * byte. One blob per file keeps body and validators in step (one atomic write).
 */
import { createHash } from 'node:crypto';
import type { Validators } from '../upstream/sparse-index.ts';

/** A cached index file and what we know about it. */
export interface IndexFile {
  /** The upstream bytes, unchanged. */
  body: Buffer;
  /** Our strong ETag for the body (a hash of it), quoted. */
  etag: string;
  /** HTTP date served as Last-Modified. */
  lastModified: string;
  /** When upstream last confirmed this body (ms since epoch). */
  checkedAt: number;
  /** Upstream's validators, sent back on revalidation. */
  upstream: Validators;
}

interface RecordMeta {
  v: 1;
  etag: string;
  lastModified: string;
  checkedAt: number;
  upstream: Validators;
}

/** Builds an {@link IndexFile} for a body fresh from upstream. */
export function createIndexFile(body: Buffer, upstream: Validators, now: number): IndexFile {
  return {
    body,
    etag: etagOfBody(body),
    lastModified: upstream.lastModified ?? new Date(now).toUTCString(),
    checkedAt: now,
    upstream,
  };
}

/** Our strong ETag for index bytes: a hash of them, quoted. */
export function etagOfBody(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 40)}"`;
}

/** Serialises a record for storage. */
export function encodeIndexRecord(file: IndexFile): Buffer {
  const meta: RecordMeta = {
    v: 1,
    etag: file.etag,
    lastModified: file.lastModified,
    checkedAt: file.checkedAt,
    upstream: file.upstream,
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(meta)}\n`), file.body]);
}

/** Parses a stored record, or returns `undefined` when it is not one (then it is refetched). */
export function decodeIndexRecord(record: Buffer): IndexFile | undefined {
  const newline = record.indexOf(0x0a);
  if (newline < 0) return undefined;
  try {
    const meta = JSON.parse(record.subarray(0, newline).toString('utf8')) as RecordMeta;
    if (meta.v !== 1 || typeof meta.etag !== 'string') return undefined;
    return {
      body: record.subarray(newline + 1),
      etag: meta.etag,
      lastModified: meta.lastModified,
      checkedAt: meta.checkedAt,
      upstream: meta.upstream ?? {},
    };
  } catch {
    return undefined;
  }
}
