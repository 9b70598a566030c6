/**
 * @module
 * The per-request Prometheus metrics, counted in plain numbers and handed to prom-client only
 * when scraped. prom-client builds and checks a label key on every `inc()` and `observe()`: six
 * times per request, about a tenth of the CPU time of a hot index request in profiles. The
 * exposition is prom-client's own: counters fill themselves in their `collect()`, and the two
 * histograms are registry metrics that give prom-client's histogram format from `get()`.
 */
import { Counter, type Registry } from 'prom-client';
import type { FinishedRequest } from '../observe/records.ts';
import { bytesSavedBy } from './batch.ts';

/** Seconds: from a memory hit (~1 ms) to a large crate over a slow link. */
export const DURATION_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Counts of one histogram series: per bucket (not cumulative, last = above every bound). */
interface Series {
  buckets: Float64Array;
  sum: number;
  count: number;
}

/** A histogram with one `kind` label, in the shape prom-client's registry reads. */
class KindHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  observe(kind: string, seconds: number): void {
    let series = this.#series.get(kind);
    if (!series) {
      series = { buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, count: 0 };
      this.#series.set(kind, series);
    }
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[bucket] as number)) {
      bucket++;
    }
    (series.buckets[bucket] as number)++;
    series.sum += seconds;
    series.count++;
  }

  /** prom-client's histogram format: cumulative `_bucket` samples, then `_sum` and `_count`. */
  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] =
      [];
    for (const [kind, series] of this.#series) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += series.buckets[i] as number;
        values.push({ labels: { le, kind }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({
        labels: { le: '+Inf', kind },
        value: series.count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels: { kind }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { kind }, value: series.count, metricName: `${this.name}_count` });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    };
  }

  reset(): void {
    this.#series.clear();
  }
}

/** Running totals of one route kind. */
interface KindTotals {
  requests: Map<string, number>;
  sent: number;
  upstream: number;
  saved: number;
}

/** The request counters and histograms of one instance. */
export class RequestMetrics {
  readonly #totals = new Map<string, KindTotals>();
  readonly #duration: KindHistogram;
  readonly #ttfb: KindHistogram;

  constructor(registers: Registry[]) {
    const totals = this.#totals;
    new Counter({
      name: 'cargo_cacher_requests_total',
      help: 'Requests answered, by route kind and cache outcome.',
      labelNames: ['kind', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [kind, kindTotals] of totals) {
          for (const [outcome, n] of kindTotals.requests) this.inc({ kind, outcome }, n);
        }
      },
    });
    bytesCounter('sent', 'Response bytes sent to clients.', registers, totals, 'sent');
    bytesCounter(
      'upstream',
      'Bytes fetched from upstream to answer requests.',
      registers,
      totals,
      'upstream',
    );
    bytesCounter(
      'saved',
      'Bytes served from the cache that did not come from upstream.',
      registers,
      totals,
      'saved',
    );
    this.#duration = new KindHistogram(
      'cargo_cacher_request_duration_seconds',
      'Time from request to the last byte of the response.',
    );
    this.#ttfb = new KindHistogram(
      'cargo_cacher_time_to_first_byte_seconds',
      'Time from request to the response headers.',
    );
    for (const registry of registers) {
      for (const histogram of [this.#duration, this.#ttfb]) {
        registry.registerMetric(histogram as unknown as Parameters<Registry['registerMetric']>[0]);
      }
    }
  }

  /** Counts a finished request. */
  observe(record: FinishedRequest): void {
    const { kind } = record;
    let kindTotals = this.#totals.get(kind);
    if (!kindTotals) {
      kindTotals = { requests: new Map(), sent: 0, upstream: 0, saved: 0 };
      this.#totals.set(kind, kindTotals);
    }
    const outcome = record.outcome ?? 'none';
    kindTotals.requests.set(outcome, (kindTotals.requests.get(outcome) ?? 0) + 1);
    kindTotals.sent += record.bytesSent;
    kindTotals.upstream += record.upstreamBytes;
    kindTotals.saved += bytesSavedBy(record);
    this.#duration.observe(kind, record.durationMs / 1000);
    this.#ttfb.observe(kind, (record.ttfbMs ?? record.durationMs) / 1000);
  }
}

/** A `kind`-labelled bytes counter filled from the totals when scraped. */
function bytesCounter(
  what: string,
  help: string,
  registers: Registry[],
  totals: Map<string, KindTotals>,
  field: 'sent' | 'upstream' | 'saved',
): void {
  new Counter({
    name: `cargo_cacher_${what}_bytes_total`,
    help,
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      for (const [kind, kindTotals] of totals) this.inc({ kind }, kindTotals[field]);
    },
  });
}
