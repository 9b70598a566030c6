/**
 * @module
 * The shapes the statistics add up and store: request sums per time bucket, crate versions,
 * upstream sums, recent events. Shared by the in-memory batch, the recorder and the queries.
 */

/** Sums of a bucket of requests. */
export interface RequestSums {
  requests: number;
  bytesSent: number;
  bytesUpstream: number;
  bytesSaved: number;
  durationMs: number;
  ttfbMs: number;
}

/** Requests of one kind and outcome in one time bucket (minute or day). */
export interface RequestRow extends RequestSums {
  bucket: number;
  kind: string;
  outcome: string;
}

/** Downloads of one crate version. */
export interface CrateRow {
  name: string;
  version: string;
  downloads: number;
  hits: number;
  bytesSent: number;
  firstServed: number;
  lastServed: number;
}

/** Toolchain archives of one release served (`1.99.0 (2026-11-26)`). */
export interface ToolchainRow {
  release: string;
  downloads: number;
  hits: number;
  bytesSent: number;
  firstServed: number;
  lastServed: number;
}

/** Upstream requests of one source in one time bucket. */
export interface UpstreamRow {
  bucket: number;
  source: string;
  requests: number;
  failures: number;
  latencyMs: number;
  latencyMaxMs: number;
}

/** A recent miss or error, for the bounded event table. */
export interface EventRow {
  at: number;
  type: 'miss' | 'error' | 'upstream';
  kind: string;
  outcome: string;
  status: number;
  target: string;
  detail: string | null;
}

/** The last known state of one upstream source. */
export interface SourceState {
  lastSuccessAt?: number;
  lastFailureAt?: number;
  lastError?: string;
}

/** Empty request sums. */
export function emptySums(): RequestSums {
  return { requests: 0, bytesSent: 0, bytesUpstream: 0, bytesSaved: 0, durationMs: 0, ttfbMs: 0 };
}

/** Adds `b`'s sums into `a`. */
export function addSums(a: RequestSums, b: RequestSums): void {
  a.requests += b.requests;
  a.bytesSent += b.bytesSent;
  a.bytesUpstream += b.bytesUpstream;
  a.bytesSaved += b.bytesSaved;
  a.durationMs += b.durationMs;
  a.ttfbMs += b.ttfbMs;
}
