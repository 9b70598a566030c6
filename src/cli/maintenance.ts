/**
 * @module
 * `cargo-cacher gc`, `verify` and `reconcile`: one expiration sweep, one integrity check, or one
 * reconcile of the catalogue with the store, on a storage root, from the command line. A
 * catalogue that was never reconciled (a store an earlier cargo-cacher wrote, not yet started
 * on) is reconciled first, so the sweep and the check see everything held.
 */
import { resolve } from 'node:path';
import { buildConfig } from '../config.ts';
import { Errors } from '../errors.ts';
import { createServices, type OpenedStorage, openStorage } from '../instance.ts';
import { sweep } from '../jobs/gc.ts';
import { readPins } from '../jobs/pins.ts';
import { formatBytes } from '../jobs/progress.ts';
import {
  RECONCILED_AT,
  type ReconcileDeps,
  type ReconcileReport,
  reconcileWithStore,
} from '../jobs/reconcile.ts';
import { verifyCache } from '../jobs/verify.ts';
import { type AppLogger, createLogger, levelForVerbosity } from '../logger.ts';
import { openStatsDb, type StatsDb, statsPath } from '../stats/db.ts';
import { recordSweep } from '../stats/upkeep.ts';
import { createLastServedLookup } from '../stats/usage.ts';
import { createHttpClient } from '../upstream/http-client.ts';
import { readUpstreamRoute } from '../upstream/upstream-route.ts';
import { type StorageFlags, s3SettingsFromFlags } from './storage-options.ts';

/** Flags of `gc`. */
export interface GcOptions extends StorageFlags {
  index: string;
  maxSize?: number | undefined;
  expireAfter?: number | undefined;
  pin: string[];
  dryRun: boolean;
}

/** Runs one sweep and prints what it removed (or would remove). */
export async function gcCommand(options: GcOptions): Promise<void> {
  const pinned = await readPins(options.pin);
  await withStorage(options, async ({ storage, db, log }) => {
    await reconcileIfNever(storage, log, { lastServed: createLastServedLookup(db) });
    const report = await sweep(storage, {
      ...(options.maxSize !== undefined && { maxSizeBytes: options.maxSize }),
      ...(options.expireAfter !== undefined && { expireAfterMs: options.expireAfter }),
      pinned,
      dryRun: options.dryRun,
    });
    // Evictions made from the command line count in the statistics too.
    recordSweep(db, report, Date.now());
    const verb = report.dryRun ? 'would remove' : 'removed';
    for (const removal of report.removed) {
      process.stdout.write(
        `${verb} ${removal.key} (${formatBytes(removal.size)}, ${removal.reason})\n`,
      );
    }
    process.stdout.write(
      `${verb} ${report.removed.length} files, ${formatBytes(report.freedBytes)}; ` +
        `${formatBytes(report.remainingBytes)} of crates left (${formatBytes(report.pinnedBytes)} pinned)\n`,
    );
  });
}

/** Flags of `verify`. */
export interface VerifyCommandOptions extends StorageFlags {
  index: string;
  repair: boolean;
  sparse?: string | undefined;
  upstream?: string | undefined;
  offline: boolean;
  upstreamProxy?: string | undefined;
  upstreamCa?: string | undefined;
  debug: number | true;
}

/** Checks every cached crate; exit code 0 when the cache was clean, 1 when it was not. */
export async function verifyCommand(options: VerifyCommandOptions): Promise<void> {
  const config = buildConfig({
    storageDir: resolve(options.index),
    s3: s3SettingsFromFlags(options),
    sparseUpstream: options.sparse,
    crateUpstream: options.upstream,
    offline: options.offline,
    upstreamProxy: options.upstreamProxy,
    proxyEnv: process.env,
    upstreamCa: options.upstreamCa,
    logLevel: levelForVerbosity(typeof options.debug === 'number' ? options.debug : 0),
  });
  const log = createLogger({ level: config.logLevel, format: 'json' });
  const route = await readUpstreamRoute(config.upstreamNetwork);
  const storage = await openStorage(config, log);
  const http = createHttpClient(config.timeouts, route);
  try {
    await reconcileIfNever(storage, log);
    const { index, crates } = createServices({ config, log, storage, http });
    const { store, catalogue } = storage;
    const report = await verifyCache(
      { store, catalogue, index, crates, log },
      { mode: options.repair ? 'repair' : 'report' },
    );
    for (const problem of report.problems) {
      process.stdout.write(
        `${problem.kind} ${problem.crate}: ${problem.detail} [${problem.action}]\n`,
      );
    }
    process.stdout.write(`checked ${report.checked} crates: ${report.problems.length} problems\n`);
    process.exitCode = report.problems.length === 0 ? 0 : 1;
  } finally {
    await http.close();
    await storage.close();
  }
}

/** Flags of `reconcile`. */
export interface ReconcileCommandOptions extends StorageFlags {
  index: string;
}

/** Reconciles the catalogue with the store now, and prints what it changed. */
export async function reconcileCommand(options: ReconcileCommandOptions): Promise<void> {
  await withStorage(options, async ({ storage, db, log }) => {
    const report = await runReconcile(storage, log, { lastServed: createLastServedLookup(db) });
    const totals = storage.catalogue.totals();
    process.stdout.write(
      `listed ${report.listed} objects: adopted ${report.adopted}, dropped ${report.dropped}, ` +
        `resized ${report.resized} (${(report.durationMs / 1000).toFixed(1)} s); the catalogue ` +
        `holds ${totals.crates.objects} crates (${formatBytes(totals.crates.bytes)}) and ` +
        `${totals.index.objects} index files (${formatBytes(totals.index.bytes)})\n`,
    );
  });
}

/** Opens the storage root's store, catalogue and statistics for `run`, and closes them after. */
async function withStorage(
  options: StorageFlags & { index: string },
  run: (opened: { storage: OpenedStorage; db: StatsDb; log: AppLogger }) => Promise<void>,
): Promise<void> {
  const config = buildConfig({
    storageDir: resolve(options.index),
    s3: s3SettingsFromFlags(options),
  });
  const log = createLogger({ level: 'warn', format: 'json' });
  const storage = await openStorage(config, log);
  const db = openStatsDb(statsPath(config.storageDir));
  try {
    await run({ storage, db, log });
  } finally {
    db.close();
    await storage.close();
  }
}

type ReconcileExtras = Pick<ReconcileDeps, 'lastServed'>;

async function runReconcile(
  storage: OpenedStorage,
  log: AppLogger,
  extras: ReconcileExtras = {},
): Promise<ReconcileReport> {
  const { raw, store, catalogue } = storage;
  // By hand there are no requests to yield to.
  const deps = { store: raw, trackedStore: store, catalogue, log, pauseMs: 0, ...extras };
  const report = await reconcileWithStore(deps, { freshListing: true });
  if (!report) {
    throw Errors.CARGO_CACHER_STORAGE(
      'another instance is listing the bucket right now; run reconcile again in a few minutes',
    );
  }
  return report;
}

/** Reconciles a catalogue that never was, saying so on stderr (it may take a while). */
async function reconcileIfNever(
  storage: OpenedStorage,
  log: AppLogger,
  extras: ReconcileExtras = {},
): Promise<void> {
  if (storage.catalogue.getMeta(RECONCILED_AT) !== undefined) return;
  process.stderr.write('the catalogue was never reconciled with the store: reconciling first\n');
  await runReconcile(storage, log, extras);
}
