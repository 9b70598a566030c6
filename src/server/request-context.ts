/**
 * @module
 * What a route found out while answering (which kind of route, hit or miss, bytes fetched
 * upstream), kept on the request, and the one step that records a finished request
 * ({@link recordRequest}) for the debug log and statistics, used by fastify's 'close' listener
 * and by the fast path alike.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type {
  FinishedRequest,
  Outcome,
  RequestObserver,
  RequestOutcome,
} from '../observe/records.ts';

declare module 'fastify' {
  interface FastifyRequest {
    cacher: RequestOutcome;
  }
}

/**
 * A fresh record. Every field is present from the start (`undefined` until known) and later
 * only assigned: objects of one shape keep V8's property access fast on the hot paths, where
 * spreading records of varying shapes showed up in profiles.
 */
export function newRequestOutcome(): RequestOutcome {
  return {
    kind: 'other',
    outcome: undefined,
    crate: undefined,
    upstreamBytes: 0,
    ttfbMs: undefined,
    errorCode: undefined,
  };
}

/** Records how the current request was answered. */
export function recordOutcome(
  request: FastifyRequest,
  outcome: Outcome,
  details: { crate?: RequestOutcome['crate']; upstreamBytes?: number } = {},
): void {
  const record = request.cacher;
  record.outcome = outcome;
  if (details.crate !== undefined) record.crate = details.crate;
  if (details.upstreamBytes !== undefined) record.upstreamBytes = details.upstreamBytes;
}

/** `X-Cache-Status` values, in nginx's spelling so existing dashboards understand them. */
export function cacheStatusHeader(outcome: Outcome): string {
  return outcome.toUpperCase().replace('-', '_');
}

/** How the exchange went, as the server saw it. */
export type Exchange = Omit<FinishedRequest, keyof RequestOutcome>;

/** Where finished requests are logged (debug), and observer failures (warn). */
export type RequestLog = Pick<FastifyBaseLogger, 'debug' | 'warn'>;

/**
 * The one recording step of every request, whoever answered it (the fast path or fastify's
 * 'close' listener): builds the record observers get and reports it.
 */
export function recordRequest(
  record: RequestOutcome,
  exchange: Exchange,
  observers: readonly RequestObserver[],
  log: RequestLog,
): void {
  reportRequest(finishedRequest(record, exchange), observers, log);
}

/**
 * The record observers get. Spelled out rather than spread: one object shape for every request
 * (see {@link newRequestOutcome}).
 */
function finishedRequest(record: RequestOutcome, exchange: Exchange): FinishedRequest {
  return {
    kind: record.kind,
    outcome: record.outcome,
    crate: record.crate,
    upstreamBytes: record.upstreamBytes,
    ttfbMs: record.ttfbMs,
    errorCode: record.errorCode,
    method: exchange.method,
    httpVersion: exchange.httpVersion,
    url: exchange.url,
    status: exchange.status,
    bytesSent: exchange.bytesSent,
    durationMs: exchange.durationMs,
    aborted: exchange.aborted,
  };
}

/** Logs a finished request (debug) and tells every observer. */
function reportRequest(
  finished: FinishedRequest,
  observers: readonly RequestObserver[],
  log: RequestLog,
): void {
  log.debug(finished, 'request');
  for (const observe of observers) {
    // This runs in a 'close' listener: a throw here would take the whole process down.
    try {
      observe(finished);
    } catch (err) {
      log.warn({ err }, 'a request observer failed');
    }
  }
}
