/**
 * @module
 * The commander definitions of `gc`, `verify` and `reconcile`.
 */
import { Command } from '@commander-js/extra-typings';
import { DEFAULTS, defaultStorageDir } from '../config.ts';
import { gcCommand, reconcileCommand, verifyCommand } from './maintenance.ts';
import {
  collect,
  increase,
  parseDurationFlag,
  parseSizeFlag,
  parseSparseFlag,
  parseUrlListFlag,
} from './options.ts';
import { STORAGE_OPTIONS } from './storage-options.ts';
import { UPSTREAM_CA_HELP, upstreamProxyOption } from './upstream-options.ts';

/** `cargo-cacher gc`: one expiration sweep. */
export function buildGcCommand() {
  return new Command('gc')
    .description('run one expiration sweep on the storage root and print what it removed')
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .option(
      '--max-size <size>',
      'remove least recently served crates until under this size',
      parseSizeFlag,
    )
    .option(
      '--expire-after <duration>',
      'remove crates not served for this long',
      parseDurationFlag,
    )
    .option(
      '--pin <path>',
      'never remove what this Cargo.lock or list names (repeatable)',
      collect,
      [] as string[],
    )
    .option('--dry-run', 'print what would be removed, remove nothing', false)
    .action(async (options) => {
      await gcCommand(options);
    });
}

/** `cargo-cacher verify`: one integrity check. */
export function buildVerifyCommand() {
  return new Command('verify')
    .description('re-hash every cached crate against its index checksum; exit 1 if any is wrong')
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .option('--repair', 'remove bad crates and fetch them again', false)
    .option('-s, --sparse <url>', 'upstream sparse index', parseSparseFlag, DEFAULTS.sparseUpstream)
    .option(
      '-u, --upstream <url>',
      "crate download source (default: the upstream index's dl); several comma-separated",
      parseUrlListFlag,
    )
    .option('--offline', 'use only cached index files', false)
    .addOption(upstreamProxyOption())
    .option('--upstream-ca <pem>', UPSTREAM_CA_HELP)
    .option('-d, --debug', 'more log output', increase, 0)
    .action(async (options) => {
      await verifyCommand(options);
    });
}

/** `cargo-cacher reconcile`: brings the catalogue in line with the store now. */
export function buildReconcileCommand() {
  return new Command('reconcile')
    .description(
      'walk the store and bring the catalogue in line with it (the server does this daily)',
    )
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .action(async (options) => {
      await reconcileCommand(options);
    });
}
