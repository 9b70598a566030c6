/**
 * @module
 * The supply-chain policy's recent decisions, for `/api/v1/stats` and the dashboard's Policy
 * panel: the young versions withheld now (with when each comes of age), the denied ones, and the
 * latest refused downloads and purges. Kept in memory, bounded: the counts that survive a
 * restart are the `cargo_cacher_policy_*` metrics' business (Prometheus keeps them).
 */
import { LruMap } from '../cache/lru.ts';
import type { PolicyEvent } from '../observe/policy-events.ts';

/** How many entries of each list are kept. */
const KEPT = 200;
/** How many of each list the summary shows. */
const SHOWN = 20;

/** One decision as the summary shows it. */
export interface PolicyEntry {
  crate: string;
  reason: string;
  /** When it was decided (ms). */
  at: number;
  /** For young versions: when it comes of age (ms). */
  availableAt?: number;
}

/** The Policy panel's figures. */
export interface PolicyFigures {
  withheld: PolicyEntry[];
  blocked: PolicyEntry[];
  purged: PolicyEntry[];
  totals: { withheld: number; blocked: number; purged: number };
}

/** The recent decisions of one instance. */
export class PolicyLog {
  readonly #now: () => number;
  readonly #withheld = new LruMap<string, PolicyEntry>(KEPT);
  readonly #blocked: PolicyEntry[] = [];
  readonly #purged: PolicyEntry[] = [];
  readonly #totals = { withheld: 0, blocked: 0, purged: 0 };

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  observe(event: PolicyEvent): void {
    const entry: PolicyEntry = {
      crate: event.crate,
      reason: event.reason,
      at: this.#now(),
      ...(event.kind !== 'purged' &&
        event.availableAt !== undefined && { availableAt: event.availableAt }),
    };
    this.#totals[event.kind] += 1;
    if (event.kind === 'withheld') this.#withheld.set(`${event.crate}:${event.reason}`, entry);
    else keepLatest(event.kind === 'blocked' ? this.#blocked : this.#purged, entry);
  }

  /** The figures now: withheld young versions that have come of age since are left out. */
  figures(): PolicyFigures {
    const now = this.#now();
    const withheld = [...this.#withheld.values()]
      .filter((entry) => entry.availableAt === undefined || entry.availableAt > now)
      .sort((a, b) => (a.availableAt ?? Infinity) - (b.availableAt ?? Infinity))
      .slice(0, SHOWN);
    return {
      withheld,
      blocked: this.#blocked.slice(-SHOWN).reverse(),
      purged: this.#purged.slice(-SHOWN).reverse(),
      totals: { ...this.#totals },
    };
  }
}

function keepLatest(list: PolicyEntry[], entry: PolicyEntry): void {
  list.push(entry);
  if (list.length > KEPT) list.splice(0, list.length - KEPT);
}
