/**
 * @module
 * `cargo-cacher export` and `cargo-cacher import`: bundles to carry crates across an air gap.
 * Both open the storage root the way `gc`, `verify` and `reconcile` do (`-i`, `--storage`), and
 * reconcile a catalogue that never was first, so `--all` sees everything held. Problems are
 * printed one line each on stderr, a summary line on stdout; the exit code is 1 when anything
 * was left out or refused.
 */
import { resolve } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { buildConfig, defaultStorageDir } from '../config.ts';
import { Errors } from '../errors.ts';
import { type OpenedStorage, openStorage } from '../instance.ts';
import { bundleFormatOf } from '../jobs/bundle-writer.ts';
import { exportBundle } from '../jobs/export.ts';
import { importBundle } from '../jobs/import.ts';
import { formatBytes } from '../jobs/progress.ts';
import { RECONCILED_AT, reconcileWithStore } from '../jobs/reconcile.ts';
import { type AppLogger, createLogger } from '../logger.ts';
import { collect, parsePositiveInt } from './options.ts';
import { STORAGE_OPTIONS, type StorageFlags, s3SettingsFromFlags } from './storage-options.ts';

/** `cargo-cacher export <out>`. */
export function buildExportCommand() {
  return new Command('export')
    .description(
      'write a bundle (a directory, or a .tar by its name) of held crates and their index files, with a manifest, to carry to another cargo-cacher',
    )
    .argument(
      '<out>',
      'the bundle to write: name.tar for a tar file, else a new or empty directory',
    )
    .option(
      '--lock <file>',
      'the registry packages of this Cargo.lock (or directory of them; repeatable)',
      collect,
      [] as string[],
    )
    .option(
      '--mirror-filter <file>',
      'the roots of this filter file and their dependencies (repeatable)',
      collect,
      [] as string[],
    )
    .option(
      '--mirror-keep <n>',
      'with --mirror-filter: the newest n matching versions of each root',
      parsePositiveInt,
      1,
    )
    .option('--all', 'every crate the storage holds', false)
    .option(
      '--since <manifest>',
      'leave out what this earlier bundle (directory, .tar or its manifest.json) carried: same path and sha256 (repeatable)',
      collect,
      [] as string[],
    )
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .action(async (out, options) => {
      await exportCommand(out, options);
    });
}

/** `cargo-cacher import <bundle>`. */
export function buildImportCommand() {
  return new Command('import')
    .description(
      'add a bundle made by cargo-cacher export to the storage, every file checked against the manifest and every crate against its index line',
    )
    .argument('<bundle>', 'the bundle: a directory or a .tar file')
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .action(async (bundle, options) => {
      await importCommand(bundle, options);
    });
}

/** Flags of `export`. */
export interface ExportCommandOptions extends StorageFlags {
  index: string;
  lock: string[];
  mirrorFilter: string[];
  mirrorKeep: number;
  all: boolean;
  since: string[];
}

async function exportCommand(out: string, options: ExportCommandOptions): Promise<void> {
  if (options.lock.length === 0 && options.mirrorFilter.length === 0 && !options.all) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      'export: nothing chosen: give --lock, --mirror-filter or --all',
    );
  }
  await withStorage(options, async ({ store, catalogue }, log) => {
    const report = await exportBundle(
      { store, catalogue, log },
      {
        out,
        locks: options.lock,
        filters: options.mirrorFilter,
        keep: options.mirrorKeep,
        all: options.all,
        since: options.since,
        tty: process.stderr.isTTY === true,
      },
    );
    for (const problem of report.problems) process.stderr.write(`problem: ${problem}\n`);
    const { crates, files } = report.manifest;
    const carried = options.since.length > 0 ? `, ${report.alreadyCarried} already carried` : '';
    process.stdout.write(
      `exported ${crates.length} crates and ${files.length - crates.length} index files ` +
        `(${formatBytes(report.bytes)}) to ${resolve(out)}${bundleFormatOf(out) === 'tar' ? '' : '/'} ` +
        `in ${seconds(report.durationMs)}${carried}; ${report.problems.length} problems\n`,
    );
    process.exitCode = report.problems.length === 0 ? 0 : 1;
  });
}

async function importCommand(
  bundle: string,
  options: StorageFlags & { index: string },
): Promise<void> {
  await withStorage(options, async ({ store, catalogue }, log) => {
    const report = await importBundle({ store, catalogue, log }, bundle, {
      tty: process.stderr.isTTY === true,
    });
    for (const refusal of report.refused) {
      process.stderr.write(`refused ${refusal.path}: ${refusal.reason}\n`);
    }
    const merged = report.merged > 0 ? ` (${report.merged} merged with the held copy)` : '';
    process.stdout.write(
      `imported ${report.crates} crates and ${report.indexFiles} index files${merged} ` +
        `(${formatBytes(report.bytes)}) in ${seconds(report.durationMs)}; ` +
        `${report.held} already held, ${report.refused.length} refused\n`,
    );
    process.exitCode = report.refused.length === 0 ? 0 : 1;
  });
}

/** Opens the storage root, reconciling a catalogue that never was, for `run`; closes it after. */
async function withStorage(
  options: StorageFlags & { index: string },
  run: (storage: OpenedStorage, log: AppLogger) => Promise<void>,
): Promise<void> {
  const config = buildConfig({
    storageDir: resolve(options.index),
    s3: s3SettingsFromFlags(options),
  });
  const log = createLogger({ level: 'warn', format: 'json' });
  const storage = await openStorage(config, log);
  try {
    await reconcileIfNever(storage, log);
    await run(storage, log);
  } finally {
    await storage.close();
  }
}

/** A store an earlier cargo-cacher wrote, never started on since: its catalogue is empty. */
async function reconcileIfNever(storage: OpenedStorage, log: AppLogger): Promise<void> {
  const { raw, store, catalogue } = storage;
  if (catalogue.getMeta(RECONCILED_AT) !== undefined) return;
  process.stderr.write('the catalogue was never reconciled with the store: reconciling first\n');
  const deps = { store: raw, trackedStore: store, catalogue, log, pauseMs: 0 };
  if (!(await reconcileWithStore(deps, { freshListing: true }))) {
    throw Errors.CARGO_CACHER_STORAGE(
      'another instance is listing the bucket right now; try again in a few minutes',
    );
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
