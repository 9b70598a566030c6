/**
 * @module
 * One running cargo-cacher: storage, upstream client, git mirror, caches, HTTP app and
 * background jobs, started and stopped in the right order. The CLI's `serve` and the tests
 * both start instances through here, so they run the same wiring.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.ts';
import { Errors } from './errors.ts';
import { GitMirror } from './git/git-mirror.ts';
import { Maintenance } from './jobs/maintenance.ts';
import { FullMirror } from './jobs/mirror.ts';
import { readPins } from './jobs/pins.ts';
import { type PrefetchRequest, readPrefetchPaths } from './jobs/prefetch-input.ts';
import type { AppLogger } from './logger.ts';
import { type AppDeps, buildApp, type RequestObserver } from './server/app.ts';
import { ConnectionGuard, resolveClientLimits } from './server/connection-guard.ts';
import { createServices } from './server/services.ts';
import { readTlsFiles } from './server/tls.ts';
import { createStats, type Stats } from './stats/stats.ts';
import { createUsageSource } from './stats/usage.ts';
import type { BlobStore } from './storage/blob-store.ts';
import { FsBlobStore } from './storage/fs-blob-store.ts';
import { openS3Store } from './storage/s3-location.ts';
import { createHttpClient, type HttpClient } from './upstream/http-client.ts';

/** A started instance. */
export interface Instance {
  app: FastifyInstance;
  deps: AppDeps;
  http: HttpClient;
  fullMirror: FullMirror | undefined;
  maintenance: Maintenance;
  stats: Stats;
  /** Client connection caps and deadlines, with their counts. */
  connections: ConnectionGuard;
  /** The URL this instance listens at (`http://127.0.0.1:PORT`, `https://` with TLS). */
  url: string;
  /** Stops accepting, finishes in-flight responses, stops jobs and the git mirror. */
  close(): Promise<void>;
}

/** Extra pieces a caller plugs in (statistics recorders, for instance). */
export interface InstanceOptions {
  observers?: RequestObserver[];
  /**
   * The instance's one clock (default `Date.now`): index TTL, circuit-breaker cool-downs, the
   * storage guard, statistics and expiration all read it, so a test can move time for all of
   * them at once instead of sleeping.
   */
  now?: () => number;
}

/**
 * Starts an instance: checks the storage root and `-f` paths first (bad input fails before
 * anything listens), then listens, then starts the git mirror and the background jobs.
 */
export async function startInstance(
  config: Readonly<Config>,
  log: AppLogger,
  options: InstanceOptions = {},
): Promise<Instance> {
  checkJobSettings(config);
  const prefetch =
    config.prefetch.length > 0 ? await readPrefetchPaths(config.prefetch) : undefined;
  const tls = config.tls && (await readTlsFiles(config.tls));
  const pinned = await readPins([...config.prefetch, ...config.upkeep.pins]);
  const store = await openStorage(config, log);
  const http = createHttpClient(config.timeouts);
  const git = createGitMirror(config, log);
  const now = options.now ?? Date.now;
  const stats = createStats({
    storageDir: config.storageDir,
    store,
    log,
    offline: config.offline,
    now,
    // Measuring a bucket lists all of it (billed per 1,000 keys): every 10 minutes is plenty.
    ...(config.s3 && { cacheSizeMaxAgeMs: 600_000 }),
  });
  const deps = createServices({
    config,
    log,
    store,
    http,
    upstreamObserver: stats.observeUpstream,
    now,
    ...(git && { git }),
  });
  const connections = new ConnectionGuard(resolveClientLimits(config.clientLimits), log);
  stats.connect({
    jobs: deps.jobs,
    connections: () => connections.counts(),
    inFlight: () => ({ index: deps.index.inFlight, crates: deps.crates.inFlight }),
    ...(git && { git }),
  });
  const maintenance = createMaintenance(config, deps, stats, pinned, now);
  const observers = [stats.observe, ...(options.observers ?? [])];
  const app = buildApp({ ...deps, stats, observers, connections, ...(tls && { tls }) });
  await app.listen({ port: config.port, host: config.listen });
  const { port } = app.server.address() as { port: number };
  const scheme = tls ? 'https' : 'http';
  const url = `${scheme}://${config.listen.includes(':') ? `[${config.listen}]` : config.listen}:${port}`;
  const fullMirror = startJobs(config, deps, log, prefetch);
  await git?.start(config.publicUrl ?? `${scheme}://localhost:${port}`);
  if (fullMirror && git?.ready) fullMirror.requestFullPass();
  maintenance.start();
  return {
    app,
    deps,
    http,
    fullMirror,
    maintenance,
    stats,
    connections,
    url,
    async close() {
      await app.close();
      await deps.prefetcher.close();
      await maintenance.close();
      await fullMirror?.close();
      await git?.close();
      await http.close();
      // Last: the jobs above may still have reported upstream requests while stopping.
      stats.close();
      await store.close();
    },
  };
}

/**
 * Opens the blob store (the `-i` directory, or the `--storage` bucket) and removes what an
 * interrupted run left half-written. With a bucket, `-i` is still made ready: it keeps this
 * instance's own state (stats.sqlite, the git mirror).
 */
export async function openStorage(config: Readonly<Config>, log: AppLogger): Promise<BlobStore> {
  const local = new FsBlobStore(config.storageDir);
  await local.init();
  let store: BlobStore = local;
  if (config.s3) {
    const bucket = await openS3Store(config.s3);
    try {
      await bucket.init();
    } catch (err) {
      await bucket.close();
      throw err;
    }
    store = bucket;
  }
  const removed = await store.cleanup();
  if (removed > 0) log.info({ removed }, 'removed temporary files left by an earlier run');
  return store;
}

/** Expiration, integrity checks and index repair, over the instance's caches. */
function createMaintenance(
  config: Readonly<Config>,
  deps: AppDeps,
  stats: Stats,
  pinned: ReadonlySet<string>,
  now: () => number,
): Maintenance {
  const { maxSizeBytes, expireAfterMs, gcIntervalMs, verifyEveryMs } = config.upkeep;
  return new Maintenance({
    store: deps.store,
    index: deps.index,
    crates: deps.crates,
    usage: createUsageSource(stats.db, () => stats.recorder.flush()),
    log: deps.log,
    policy: {
      pinned,
      ...(maxSizeBytes !== undefined && { maxSizeBytes }),
      ...(expireAfterMs !== undefined && { expireAfterMs }),
    },
    gcIntervalMs,
    verifyEveryMs,
    onSweep: (report) => stats.observeSweep(report),
    onVerify: (report) => stats.observeVerify(report),
    // With a git mirror, checksums come from it; without, a lost index file is fetched again.
    restoreIndex: !config.offline && !config.git.enabled,
    now,
  });
}

function checkJobSettings(config: Readonly<Config>): void {
  if (config.all && !config.git.enabled) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      '-a/--all mirrors the crates listed in the git index, so it needs the git mirror: remove --no-git',
    );
  }
}

/** Starts `-f` prefetching and, with `-a`, the full mirror (which follows the git mirror). */
function startJobs(
  config: Readonly<Config>,
  deps: AppDeps,
  log: AppLogger,
  prefetch: PrefetchRequest | undefined,
): FullMirror | undefined {
  if (prefetch) deps.prefetcher.start(prefetch, `prefetch of ${prefetch.files.join(', ')}`);
  if (!config.all || !deps.git) return undefined;
  const fullMirror = new FullMirror({
    git: deps.git,
    crates: deps.crates,
    jobs: deps.jobs,
    threads: config.threads,
    skipYanked: config.skipYanked,
    log,
  });
  fullMirror.follow();
  return fullMirror;
}

/** The git index mirror, unless `--no-git`. It lives under the storage root. */
export function createGitMirror(config: Readonly<Config>, log: AppLogger): GitMirror | undefined {
  if (!config.git.enabled) return undefined;
  if (config.publicUrl === undefined && !isLoopback(config.listen)) {
    log.warn(
      'serving the git index without --public-url: its config.json sends downloads to ' +
        'http://localhost:PORT, which only works on this machine',
    );
  }
  return new GitMirror({
    gitDir: join(config.storageDir, 'git', 'index.git'),
    upstreamUrl: config.git.url,
    refreshMs: config.gitRefreshMs,
    offline: config.offline,
    log,
  });
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}
