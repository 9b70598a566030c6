/**
 * @module
 * The in-memory side of the statistics: finished requests and upstream results are added up
 * here as they happen (no I/O, no per-request allocation beyond a map lookup), and the
 * recorder writes the sums in one transaction per flush. 10,000 hits in one second become one
 * row update per (minute, kind, outcome).
 */
import type { FinishedRequest } from '../observe/records.ts';
import type { UpstreamResult } from '../upstream/observed-client.ts';
import {
  addSums,
  type CrateRow,
  type EventRow,
  emptySums,
  type RequestRow,
  type SourceState,
  type ToolchainRow,
  type UpstreamRow,
} from './rows.ts';
import { dayOf, MINUTE_MS, minuteOf } from './time.ts';

/**
 * Route kinds that statistics count: the caches, git, and the registry API cargo uses (search,
 * crate metadata); cargo-cacher's own API, the dashboard and /metrics are left out.
 */
export const COUNTED_KINDS: ReadonlySet<string> = new Set([
  'sparse-index',
  'crate',
  'toolchain',
  'registry-api',
  'git',
]);

/**
 * Bytes a request was served from the cache without fetching them: everything sent, less what
 * had to come from upstream for it (never negative: a gzipped index is smaller than its source).
 */
export function bytesSavedBy(
  record: Pick<FinishedRequest, 'outcome' | 'status' | 'bytesSent' | 'upstreamBytes'>,
): number {
  if (record.status < 200 || record.status >= 300) return 0;
  if (record.outcome === 'error' || record.outcome === 'not-found') return 0;
  return Math.max(0, record.bytesSent - record.upstreamBytes);
}

/** What happened since the last flush. */
export class StatsBatch {
  readonly requests = new Map<string, RequestRow>();
  readonly crates = new Map<string, CrateRow>();
  readonly toolchains = new Map<string, ToolchainRow>();
  readonly upstream = new Map<string, UpstreamRow>();
  readonly failures = new Map<
    string,
    { day: number; source: string; reason: string; failures: number }
  >();
  readonly sources = new Map<string, SourceState>();
  readonly #events: Record<EventRow['type'], EventRow[]> = { miss: [], error: [], upstream: [] };
  readonly #maxEvents: number;
  #size = 0;

  constructor(maxEvents = 1000) {
    this.#maxEvents = maxEvents;
  }

  /** Recent events, oldest first; at most `maxEvents` of each type. */
  get events(): EventRow[] {
    const { miss, error, upstream } = this.#events;
    return [...miss, ...error, ...upstream].sort((a, b) => a.at - b.at);
  }

  /** Records added (requests and upstream results). */
  get size(): number {
    return this.#size;
  }

  /** Adds a finished request that happened at `at` (ms). Uncounted kinds are ignored. */
  addRequest(record: FinishedRequest, at: number): void {
    if (!COUNTED_KINDS.has(record.kind)) return;
    this.#size += 1;
    const outcome = outcomeOf(record);
    const minute = minuteOf(at);
    const key = `${minute}|${record.kind}|${outcome}`;
    let row = this.requests.get(key);
    if (!row) {
      row = { bucket: minute, kind: record.kind, outcome, ...emptySums() };
      this.requests.set(key, row);
    }
    row.requests += 1;
    row.bytesSent += record.bytesSent;
    row.bytesUpstream += record.upstreamBytes;
    row.bytesSaved += bytesSavedBy(record);
    row.durationMs += record.durationMs;
    row.ttfbMs += record.ttfbMs ?? record.durationMs;
    if (record.kind === 'crate' && record.crate && record.status === 200 && !record.aborted) {
      this.#addCrate(record.crate, outcome === 'hit', record.bytesSent, at);
    }
    if (record.kind === 'toolchain' && record.crate && record.status === 200 && !record.aborted) {
      this.#addToolchain(record.crate.version, outcome === 'hit', record.bytesSent, at);
    }
    if (outcome === 'miss' || outcome === 'error') this.#addEvent(eventOf(record, outcome, at));
  }

  /** Adds an upstream result observed at `at` (ms). */
  addUpstream(result: UpstreamResult, at: number): void {
    this.#size += 1;
    const minute = minuteOf(at);
    const key = `${minute}|${result.source}`;
    let row = this.upstream.get(key);
    if (!row) {
      row = {
        bucket: minute,
        source: result.source,
        requests: 0,
        failures: 0,
        latencyMs: 0,
        latencyMaxMs: 0,
      };
      this.upstream.set(key, row);
    }
    // A body that broke off was counted as a request when its headers arrived.
    if (result.failure !== 'body') {
      row.requests += 1;
      row.latencyMs += result.latencyMs;
      row.latencyMaxMs = Math.max(row.latencyMaxMs, result.latencyMs);
    }
    const state = this.sources.get(result.source) ?? {};
    this.sources.set(result.source, state);
    if (!result.failure) {
      state.lastSuccessAt = at;
      return;
    }
    row.failures += 1;
    state.lastFailureAt = at;
    state.lastError = result.detail ?? result.failure;
    const day = dayOf(at);
    const failureKey = `${day}|${result.source}|${result.failure}`;
    const failure = this.failures.get(failureKey) ?? {
      day,
      source: result.source,
      reason: result.failure,
      failures: 0,
    };
    failure.failures += 1;
    this.failures.set(failureKey, failure);
    this.#addEvent({
      at,
      type: 'upstream',
      kind: result.source,
      outcome: result.failure,
      status: result.status ?? 0,
      target: stripQuery(result.url),
      detail: result.detail ?? null,
    });
  }

  /** The minute rows summed per UTC day: the roll-up written alongside them. */
  requestDays(): RequestRow[] {
    return rollUp(
      [...this.requests.values()],
      (row) => `${row.kind}|${row.outcome}`,
      (a, b) => {
        addSums(a, b);
      },
    );
  }

  /** The upstream minute rows summed per UTC day. */
  upstreamDays(): UpstreamRow[] {
    return rollUp(
      [...this.upstream.values()],
      (row) => row.source,
      (a, b) => {
        a.requests += b.requests;
        a.failures += b.failures;
        a.latencyMs += b.latencyMs;
        a.latencyMaxMs = Math.max(a.latencyMaxMs, b.latencyMaxMs);
      },
    );
  }

  #addCrate(
    crate: { name: string; version: string },
    hit: boolean,
    bytes: number,
    at: number,
  ): void {
    const key = `${crate.name}@${crate.version}`;
    let row = this.crates.get(key);
    if (!row) {
      row = { ...crate, downloads: 0, hits: 0, bytesSent: 0, firstServed: at, lastServed: at };
      this.crates.set(key, row);
    }
    row.downloads += 1;
    row.hits += hit ? 1 : 0;
    row.bytesSent += bytes;
    row.lastServed = at;
  }

  #addToolchain(release: string, hit: boolean, bytes: number, at: number): void {
    let row = this.toolchains.get(release);
    if (!row) {
      row = { release, downloads: 0, hits: 0, bytesSent: 0, firstServed: at, lastServed: at };
      this.toolchains.set(release, row);
    }
    row.downloads += 1;
    row.hits += hit ? 1 : 0;
    row.bytesSent += bytes;
    row.lastServed = at;
  }

  /** Bounded per type, as the table is: a burst of misses never pushes the errors out. */
  #addEvent(event: EventRow): void {
    const events = this.#events[event.type];
    events.push(event);
    if (events.length > this.#maxEvents) events.shift();
  }
}

/** A request without an outcome (a route that sets none) is counted by its status. */
function outcomeOf(record: FinishedRequest): string {
  if (record.outcome) return record.outcome;
  if (record.status >= 500) return 'error';
  return record.status === 404 ? 'not-found' : 'hit';
}

/** A failed download has no `crate` (the route sets it on success): read it from the path. */
const DOWNLOAD_PATH = /^\/api\/v1\/crates\/([^/?]+)\/([^/?]+)\/download/;

function eventOf(record: FinishedRequest, outcome: string, at: number): EventRow {
  const fromPath = record.kind === 'crate' ? DOWNLOAD_PATH.exec(record.url) : null;
  const target =
    record.crate && record.kind === 'crate'
      ? `${record.crate.name}@${record.crate.version}`
      : fromPath
        ? `${safeDecode(fromPath[1])}@${safeDecode(fromPath[2])}`
        : stripQuery(record.url);
  return {
    at,
    type: outcome === 'miss' ? 'miss' : 'error',
    kind: record.kind,
    outcome,
    status: record.status,
    target,
    detail: record.errorCode ?? null,
  };
}

function safeDecode(text = ''): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function stripQuery(url: string | undefined): string {
  return (url ?? '').split('?')[0] ?? '';
}

function rollUp<T extends { bucket: number }>(
  rows: T[],
  keyOf: (row: T) => string,
  merge: (into: T, row: T) => void,
): T[] {
  const days = new Map<string, T>();
  for (const row of rows) {
    const day = dayOf(row.bucket * MINUTE_MS);
    const key = `${day}|${keyOf(row)}`;
    const existing = days.get(key);
    if (existing) merge(existing, row);
    else days.set(key, { ...row, bucket: day });
  }
  return [...days.values()];
}
