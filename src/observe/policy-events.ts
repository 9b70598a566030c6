/**
 * @module
 * What the supply-chain policy decided, as the statistics count it: a version withheld from a
 * served index file (`withheld`), a download refused (`blocked`), a cached crate purged because
 * upstream removed it (`purged`).
 */

/** One decision of the policy. */
export type PolicyEvent =
  | {
      kind: 'withheld' | 'blocked';
      reason: 'young' | 'denied';
      crate: string;
      /** For young versions: when it comes of age (ms). */
      availableAt?: number;
    }
  | { kind: 'purged'; reason: 'removed'; crate: string };

/** Told about every decision (the statistics subscribe). */
export type PolicyObserver = (event: PolicyEvent) => void;
