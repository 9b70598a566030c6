/**
 * @module
 * `cargo-cacher stats [-i dir] [--json]`: the dashboard's summary in the terminal, read from the
 * statistics database under the storage root. Works while a proxy runs (SQLite WAL lets it
 * read alongside the writer) and after it stopped; it never writes.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { Catalogue, cataloguePath } from '../cache/catalogue.ts';
import { defaultStorageDir } from '../config.ts';
import { Errors } from '../errors.ts';
import { type CacheSize, catalogueSize } from '../stats/cache-size.ts';
import { openStatsDb, statsPath } from '../stats/db.ts';
import { buildSummary, type GitStatusSource } from '../stats/summary.ts';
import { renderTextReport } from '../stats/text-report.ts';
import { STORAGE_OPTIONS, type StorageFlags } from './storage-options.ts';

/** Flags of the stats command. */
export interface StatsCommandOptions extends StorageFlags {
  index: string;
  json: boolean;
}

/** The `stats` subcommand, for `buildProgram().addCommand(...)`. */
export function buildStatsCommand() {
  return new Command('stats')
    .description('print the statistics summary (hit ratio, bytes saved, top crates, errors)')
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .option('--json', 'print the summary as JSON, as GET /api/v1/stats answers it', false)
    .action(async (options) => {
      process.stdout.write(await statsReport(options));
    });
}

/** Builds the report text (or JSON) for a storage root. */
export async function statsReport(options: StatsCommandOptions): Promise<string> {
  const storageDir = resolve(options.index);
  const path = statsPath(storageDir);
  if (!(await exists(path))) {
    throw Errors.CARGO_CACHER_NOT_FOUND(
      `no statistics in ${storageDir} yet: ${path} is created when the proxy first starts there`,
    );
  }
  const db = openStatsDb(path, { readonly: true });
  try {
    // The catalogue's totals: with --storage too, what this instance (-i) knows the bucket holds.
    const size = await readCacheSize(storageDir);
    const git = await gitStatus(storageDir);
    const summary = await buildSummary({
      db,
      cacheSize: async () => size,
      ...(git && { git }),
    });
    return options.json
      ? `${JSON.stringify(summary, null, 2)}\n`
      : renderTextReport(summary, { storageDir });
  } finally {
    db.close();
  }
}

/** The catalogue's totals, read without writing; none before the proxy first started there. */
async function readCacheSize(storageDir: string): Promise<CacheSize | undefined> {
  if (!(await exists(cataloguePath(storageDir)))) return undefined;
  const catalogue = Catalogue.open(storageDir, { readonly: true });
  try {
    return catalogueSize(catalogue);
  } finally {
    catalogue.close();
  }
}

/**
 * The git mirror as seen on disk: present once cloned, and `FETCH_HEAD` is rewritten by every
 * successful fetch, so its mtime is the last refresh.
 */
async function gitStatus(storageDir: string): Promise<GitStatusSource | undefined> {
  const gitDir = join(storageDir, 'git', 'index.git');
  if (!(await exists(join(gitDir, 'HEAD')))) return undefined;
  const fetched = await stat(join(gitDir, 'FETCH_HEAD')).catch(() => undefined);
  return {
    status: () => ({
      ready: fetched !== undefined,
      upstream: gitDir,
      ...(fetched && { lastSuccessAt: fetched.mtimeMs }),
    }),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
