/**
 * @module
 * What the HTTP server tells whoever observes it: one record per finished request, and the
 * counts of its client connections. The types live outside `server/` so that `stats/`, which
 * consumes them, depends on the records and not on the server that produces them.
 */

/** The families of routes, as statistics group them. */
export type RouteKind =
  | 'sparse-index'
  | 'crate'
  | 'toolchain'
  | 'registry-api'
  | 'git'
  | 'api'
  | 'other';

/** How a request was answered. */
export type Outcome = 'hit' | 'miss' | 'revalidated' | 'stale' | 'not-found' | 'error';

/** What a route found out while answering, kept on the request until it finishes. */
export interface RequestOutcome {
  kind: RouteKind;
  outcome?: Outcome;
  /**
   * The crate served, for per-version download counts; for a toolchain archive, the release it
   * belongs to (name `rust`, version `1.99.0 (2026-11-26)`), for the top toolchains.
   */
  crate?: { name: string; version: string };
  upstreamBytes: number;
  /** Milliseconds until the response headers went out (statistics' time to first byte). */
  ttfbMs?: number;
  /** The `CARGO_CACHER_*` code (or fastify's) of a failed request. */
  errorCode?: string;
}

/** A finished request, as observers see it. */
export interface FinishedRequest extends RequestOutcome {
  method: string;
  /** `1.1` or `2.0` (HTTP/2 is served only with TLS). */
  httpVersion?: string;
  /** The request target as sent (query string included). */
  url: string;
  status: number;
  bytesSent: number;
  durationMs: number;
  /** The connection closed before any response was sent (`bytesSent` is then 0). */
  aborted?: boolean;
}

/** Observes every finished request (statistics subscribe here). */
export type RequestObserver = (record: FinishedRequest) => void;

/** Why a connection or stream was refused or closed, as counted in /metrics. */
export type ConnectionEvent =
  | 'refused_per_ip'
  | 'refused_total'
  | 'evicted'
  | 'send_timeout'
  | 'idle_timeout'
  | 'body_timeout';

/** What /metrics and /health read of the client connections. */
export interface ConnectionCounts {
  open: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Totals since start, by event. */
  events: Record<ConnectionEvent, number>;
}
