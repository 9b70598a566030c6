/**
 * @module
 * `cargo-cacher gc` and `cargo-cacher verify`: one expiration sweep, or one integrity check, on
 * a storage root, from the command line.
 */
import { resolve } from 'node:path';
import { buildConfig } from '../config.ts';
import { openStorage } from '../instance.ts';
import { sweep } from '../jobs/gc.ts';
import { readPins } from '../jobs/pins.ts';
import { formatBytes } from '../jobs/progress.ts';
import { verifyCache } from '../jobs/verify.ts';
import { createLogger, levelForVerbosity } from '../logger.ts';
import { createServices } from '../server/services.ts';
import { openStatsDb, statsPath } from '../stats/db.ts';
import { recordSweep } from '../stats/upkeep.ts';
import { createUsageSource } from '../stats/usage.ts';
import { createHttpClient } from '../upstream/http-client.ts';
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
  const config = buildConfig({
    storageDir: resolve(options.index),
    s3: s3SettingsFromFlags(options),
  });
  const log = createLogger({ level: 'warn', format: 'json' });
  const pinned = await readPins(options.pin);
  const store = await openStorage(config, log);
  const db = openStatsDb(statsPath(config.storageDir));
  try {
    const report = await sweep(store, createUsageSource(db), {
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
  } finally {
    db.close();
    await store.close();
  }
}

/** Flags of `verify`. */
export interface VerifyCommandOptions extends StorageFlags {
  index: string;
  repair: boolean;
  sparse?: string | undefined;
  upstream?: string | undefined;
  offline: boolean;
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
    logLevel: levelForVerbosity(typeof options.debug === 'number' ? options.debug : 0),
  });
  const log = createLogger({ level: config.logLevel, format: 'json' });
  const store = await openStorage(config, log);
  const http = createHttpClient(config.timeouts);
  try {
    const { index, crates } = createServices({ config, log, store, http });
    const report = await verifyCache(
      { store, index, crates, log },
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
    await store.close();
  }
}
