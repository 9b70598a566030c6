/**
 * @module
 * The composition root: all wiring of one cargo-cacher lives here. {@link startInstance} starts a
 * running one (storage and its catalogue, upstream client, git mirror, caches, HTTP app and
 * background jobs, started and stopped in the right order); the one-shot commands (`prefetch`,
 * `gc`, `verify`, `reconcile`) open the same storage and caches through {@link openStorage} and
 * {@link createServices}. The CLI and the tests build instances the same way.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ApiCache } from './cache/api-cache.ts';
import { Catalogue } from './cache/catalogue.ts';
import { CrateCache } from './cache/crate-cache.ts';
import { HeldIndexView, heldIndexFiles, heldOverlayFilter } from './cache/held-view.ts';
import { HotCrates } from './cache/hot-crates.ts';
import { IndexCache, type IndexSource } from './cache/index-cache.ts';
import { FallbackIndexSource, GitIndexSource } from './cache/index-sources.ts';
import { chainViews } from './cache/index-variants.ts';
import { observeWithheld, PolicyIndexView, policyOverlayFilter } from './cache/policy-view.ts';
import { RegistryConfigService } from './cache/registry-config-service.ts';
import { StorageWriteGuard } from './cache/storage-guard.ts';
import { ToolchainCache } from './cache/toolchain-cache.ts';
import { trackChanges } from './cache/tracked-store.ts';
import type { Config } from './config.ts';
import { Errors } from './errors.ts';
import { GitMirror, type GitMirrorOptions } from './git/git-mirror.ts';
import { prepareGitNetwork } from './git/git-network.ts';
import { chainOverlayFilters } from './git/overlay-filter.ts';
import { removedVersions } from './git/tree-reader.ts';
import { FilteredMirror } from './jobs/filtered-mirror.ts';
import { JobRegistry } from './jobs/job.ts';
import { Maintenance } from './jobs/maintenance.ts';
import { FullMirror } from './jobs/mirror.ts';
import { readMirrorRoots } from './jobs/mirror-roots.ts';
import { readPins } from './jobs/pins.ts';
import { type PrefetchRequest, readPrefetchPaths } from './jobs/prefetch-input.ts';
import { Prefetcher } from './jobs/prefetcher.ts';
import { RemovalPurger } from './jobs/removals.ts';
import { ToolchainMirror } from './jobs/toolchain-mirror.ts';
import type { AppLogger } from './logger.ts';
import type { PolicyObserver } from './observe/policy-events.ts';
import type { RequestObserver } from './observe/records.ts';
import { LivePolicy } from './policy/live-policy.ts';
import { type AppDeps, buildApp } from './server/app.ts';
import { ConnectionGuard, resolveClientLimits } from './server/connection-guard.ts';
import { readTlsFiles } from './server/tls.ts';
import { TokenFile } from './server/token-file.ts';
import { catalogueSize } from './stats/cache-size.ts';
import { createStats, type Stats } from './stats/stats.ts';
import { createLastServedLookup } from './stats/usage.ts';
import type { BlobStore } from './storage/blob-store.ts';
import { FsBlobStore } from './storage/fs-blob-store.ts';
import { openS3Store } from './storage/s3-location.ts';
import { CircuitBreakers } from './upstream/circuit-breaker.ts';
import { CratesApiUpstream } from './upstream/crates-api.ts';
import { UpstreamGuard } from './upstream/failover.ts';
import { createHttpClient, type HttpClient } from './upstream/http-client.ts';
import { LiveHttpClient } from './upstream/live-http-client.ts';
import {
  observeHttpClient,
  type UpstreamObserver,
  type UpstreamSource,
} from './upstream/observed-client.ts';
import {
  CRATES_IO_API_INTERVAL_MS,
  CRATES_IO_API_QUEUE,
  RateLimiter,
} from './upstream/rate-limit.ts';
import { RustupUpstream } from './upstream/rustup-dist.ts';
import { SparseUpstream } from './upstream/sparse-index.ts';
import { readUpstreamRoute, type UpstreamRoute } from './upstream/upstream-route.ts';

/** A started instance. */
export interface Instance {
  app: FastifyInstance;
  deps: AppDeps;
  /** The upstream client; a reload (src/reload.ts) changes its timeouts. */
  http: LiveHttpClient;
  /** Versions expiration never removes (`-f` and `--pin` files); a reload reads them again. */
  pinned: Set<string>;
  /** `--auth-token-file`, read again by a reload. */
  tokens: TokenFile | undefined;
  fullMirror: FullMirror | undefined;
  /** `-a --mirror-filter`: the filter's roots and their closure, instead of the full mirror. */
  filteredMirror: FilteredMirror | undefined;
  /** `--rustup-mirror`: the toolchains warmed in the background. */
  toolchainMirror: ToolchainMirror | undefined;
  maintenance: Maintenance;
  stats: Stats;
  /** What the cache holds. */
  catalogue: Catalogue;
  /** The blob store, its catalogue, and the store seen through both. */
  storage: OpenedStorage;
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
  /**
   * How the instance waits for its clock (default a timer): the registry API's rate limit
   * sleeps through it, so a test with a hand-moved clock ends the waits when it moves it.
   */
  sleep?: (ms: number) => Promise<unknown>;
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
  // A bad filter file stops the start (one line naming file and line) before anything listens.
  if (config.mirrorFilters.length > 0) await readMirrorRoots(config.mirrorFilters);
  const prefetch =
    config.prefetch.length > 0 ? await readPrefetchPaths(config.prefetch) : undefined;
  const tls = config.tls && (await readTlsFiles(config.tls));
  const pinned = await readPins([...config.prefetch, ...config.upkeep.pins]);
  const policy = await LivePolicy.load(config.policy, log);
  const now = options.now ?? Date.now;
  const route = await readUpstreamRoute(config.upstreamNetwork);
  const storage = await openStorage(config, log, { now, pinned });
  const http = new LiveHttpClient((timeouts) => createHttpClient(timeouts, route), config.timeouts);
  const stats = createStats({
    storageDir: config.storageDir,
    log,
    offline: config.offline,
    now,
    cacheSize: () => catalogueSize(storage.catalogue, now),
  });
  const servesHeldOnly = config.offline || config.onlyHeld;
  const policyFilter = policyOverlayFilter(policy, {
    now,
    onWithheld: observeWithheld(log, stats.observePolicy),
  });
  const heldFilter = heldOverlayFilter(storage.catalogue, servesHeldOnly);
  const git = createGitMirror(config, log, {
    filter: (state) => chainOverlayFilters([policyFilter(), heldFilter(state)]),
    localIndex: () => heldIndexFiles(storage.catalogue, storage.store),
    fetchEnv: await gitFetchEnv(config, route),
  });
  // A reload of the policy files changes the served git index too, and so does a change of what
  // is held while the index served lists only that.
  if (git) {
    policy.onChange(() => void git.republish());
    republishOnHeldChange(git, storage.catalogue, servesHeldOnly);
  }
  const deps = createServices({
    config,
    log,
    storage,
    http,
    upstreamObserver: stats.observeUpstream,
    now,
    ...(options.sleep && { sleep: options.sleep }),
    policy,
    policyObserver: stats.observePolicy,
    ...(git && { git }),
  });
  policy.start();
  if (git && deps.removals) purgeOnGitRefresh(git, deps.removals, log);
  const connections = new ConnectionGuard(resolveClientLimits(config.clientLimits), log);
  stats.connect({
    jobs: deps.jobs,
    connections: () => connections.counts(),
    inFlight: () => ({ index: deps.index.inFlight, crates: deps.crates.inFlight }),
    ...(git && { git }),
  });
  // A server killed between a publish and its record: reconcile now rather than within a day.
  const uncleanStop = storage.catalogue.beginSession();
  const maintenance = createMaintenance(config, deps, storage, stats, pinned, now, uncleanStop);
  const observers = [stats.observe, ...(options.observers ?? [])];
  const tokens =
    config.authTokenFile === undefined ? undefined : TokenFile.load(config.authTokenFile);
  const app = buildApp({
    ...deps,
    stats,
    observers,
    connections,
    ...(tls && { tls }),
    ...(tokens && { tokens }),
  });
  await app.listen({ port: config.port, host: config.listen });
  const { port } = app.server.address() as { port: number };
  const scheme = tls ? 'https' : 'http';
  const url = `${scheme}://${config.listen.includes(':') ? `[${config.listen}]` : config.listen}:${port}`;
  const fullMirror = startJobs(config, deps, log, prefetch, now);
  const filteredMirror = createFilteredMirror(config, deps, log, now);
  const toolchainMirror = createToolchainMirror(config, deps, storage.catalogue, log);
  await git?.start(config.publicUrl ?? `${scheme}://localhost:${port}`);
  if (fullMirror && git?.ready) fullMirror.requestFullPass();
  filteredMirror?.requestPass();
  toolchainMirror?.requestPass();
  maintenance.start();
  return {
    app,
    deps,
    http,
    pinned,
    tokens,
    fullMirror,
    filteredMirror,
    toolchainMirror,
    maintenance,
    stats,
    catalogue: storage.catalogue,
    storage,
    connections,
    url,
    async close() {
      // Jobs stop taking new packages at once (the running ones finish) while the in-flight
      // responses finish: both drain together, within the one shutdown bound.
      const jobsStopped = Promise.all([
        deps.prefetcher.close(),
        fullMirror?.close(),
        filteredMirror?.close(),
        toolchainMirror?.close(),
      ]);
      jobsStopped.catch(() => undefined);
      await app.close();
      await jobsStopped;
      await deps.toolchains?.idle();
      policy.close();
      await deps.removals?.idle();
      await maintenance.close();
      await git?.close();
      await http.close();
      // Last: the jobs above may still have reported upstream requests while stopping.
      stats.close();
      storage.catalogue.endSession();
      await storage.close();
    },
  };
}

/**
 * Storage as the caches use it: the blob store, its catalogue, and the store seen through both
 * (`store`: every publish and delete is recorded in the catalogue and drops the crate's copy in
 * memory).
 */
export interface OpenedStorage {
  /** The blob store itself: the reconcile lists it. */
  raw: BlobStore;
  /** The store every cache and job writes through. */
  store: BlobStore;
  catalogue: Catalogue;
  hotCrates: HotCrates;
  /** Writes what the catalogue has pending and closes both. */
  close(): Promise<void>;
}

/**
 * Opens the blob store (the `-i` directory, or the `--storage` bucket), removes what an
 * interrupted run left half-written, and opens the catalogue at `<-i>/catalogue.sqlite`. With a
 * bucket, `-i` still keeps this instance's own state (catalogue, statistics, git mirror).
 */
export async function openStorage(
  config: Readonly<Config>,
  log: AppLogger,
  options: { now?: () => number; pinned?: ReadonlySet<string> } = {},
): Promise<OpenedStorage> {
  const raw = await openBlobStore(config, log);
  try {
    return catalogueStore(raw, config.storageDir, log, options);
  } catch (err) {
    await raw.close();
    throw err;
  }
}

/**
 * Opens the catalogue of `storageDir` over an open blob store (tests pass stores of their own):
 * the other half of {@link openStorage}.
 */
export function catalogueStore(
  raw: BlobStore,
  storageDir: string,
  log: AppLogger,
  options: { now?: () => number; pinned?: ReadonlySet<string> } = {},
): OpenedStorage {
  const catalogue = Catalogue.open(storageDir, {
    ...(options.now && { now: options.now }),
    ...(options.pinned && { pinned: options.pinned }),
    onFlushError: (err) => log.warn({ err }, 'catalogue: could not record last-served times'),
  });
  if (options.pinned) catalogue.setPins(options.pinned);
  const hotCrates = new HotCrates();
  return {
    raw,
    store: trackChanges(raw, { catalogue, hotCrates, log }),
    catalogue,
    hotCrates,
    async close() {
      catalogue.close();
      await raw.close();
    },
  };
}

async function openBlobStore(config: Readonly<Config>, log: AppLogger): Promise<BlobStore> {
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
  { catalogue, raw: rawStore }: OpenedStorage,
  stats: Stats,
  pinned: ReadonlySet<string>,
  now: () => number,
  reconcileNow: boolean,
): Maintenance {
  const { maxSizeBytes, expireAfterMs, gcIntervalMs, verifyEveryMs } = config.upkeep;
  return new Maintenance({
    store: deps.store,
    rawStore,
    catalogue,
    index: deps.index,
    crates: deps.crates,
    lastServed: createLastServedLookup(stats.db),
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
    reconcileNow,
    now,
  });
}

function checkJobSettings(config: Readonly<Config>): void {
  if (config.all && !config.git.enabled && config.mirrorFilters.length === 0) {
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
  now: () => number,
): FullMirror | undefined {
  if (prefetch) deps.prefetcher.start(prefetch, `prefetch of ${prefetch.files.join(', ')}`);
  if (!config.all || !deps.git || config.mirrorFilters.length > 0) return undefined;
  const fullMirror = new FullMirror({
    git: deps.git,
    crates: deps.crates,
    jobs: deps.jobs,
    threads: config.threads,
    skipYanked: config.skipYanked,
    log,
    ...(deps.policy && { policy: deps.policy }),
    now,
  });
  fullMirror.follow();
  return fullMirror;
}

/**
 * With `-a --mirror-filter`: the filtered mirror, passing after each git refresh, or every `-r`
 * without a git mirror (it reads index files through the index cache, so it needs none).
 */
function createFilteredMirror(
  config: Readonly<Config>,
  deps: AppDeps,
  log: AppLogger,
  now: () => number,
): FilteredMirror | undefined {
  if (!config.all || config.mirrorFilters.length === 0) return undefined;
  const mirror = new FilteredMirror({
    filters: config.mirrorFilters,
    keep: config.mirrorKeep,
    index: deps.index,
    crates: deps.crates,
    jobs: deps.jobs,
    threads: config.threads,
    log,
    ...(deps.policy && { policy: deps.policy }),
    now,
  });
  if (deps.git) mirror.follow(deps.git);
  else mirror.every(config.gitRefreshMs);
  return mirror;
}

/** With `--rustup-mirror`: the toolchain mirror, passing at startup and every `-r`. */
function createToolchainMirror(
  config: Readonly<Config>,
  deps: AppDeps,
  catalogue: Catalogue,
  log: AppLogger,
): ToolchainMirror | undefined {
  const { mirror, targets, profile } = config.rustup;
  if (mirror.length === 0 || !deps.toolchains) return undefined;
  const toolchainMirror = new ToolchainMirror({
    toolchains: deps.toolchains,
    catalogue,
    jobs: deps.jobs,
    channels: mirror,
    targets,
    profile,
    threads: config.threads,
    log,
    pin: true,
  });
  toolchainMirror.every(config.gitRefreshMs);
  return toolchainMirror;
}

/**
 * Versions a git refresh shows removed upstream (a line gone, or a whole file deleted) are
 * purged like those a sparse revalidation shows.
 */
function purgeOnGitRefresh(git: GitMirror, removals: RemovalPurger, log: AppLogger): void {
  git.onRefresh((refresh) => {
    const from = refresh.previousUpstream;
    if (from === undefined) return;
    void removedVersions(git.gitDir, from, refresh.upstream).then(
      (removed) => {
        for (const [name, versions] of removed) removals.removed(name, versions);
      },
      (err: unknown) => log.warn({ err }, 'could not list the versions a git refresh removed'),
    );
  });
}

/** How long held-set changes are gathered before the git index is rebuilt for them. */
const HELD_REBUILD_DELAY_MS = 2_000;

/**
 * Rebuilds the git index when what is held changes while it lists only what is held (offline,
 * `--only-held`, an upstream outage): a crate fetched or imported then appears to git clients
 * as it does to sparse ones. Changes are gathered for a moment, so an import is one rebuild.
 */
function republishOnHeldChange(git: GitMirror, catalogue: Catalogue, always: boolean): void {
  let timer: NodeJS.Timeout | undefined;
  catalogue.onHeldChanged(() => {
    if (timer || (!always && git.upstreamReachable)) return;
    timer = setTimeout(() => {
      timer = undefined;
      void git.republish();
    }, HELD_REBUILD_DELAY_MS);
    timer.unref();
  });
}

/**
 * The environment of the git mirror's fetches: the outbound proxy, and the CA bundle written
 * under the storage root (`git/upstream-ca.pem`) when there is an extra CA.
 */
async function gitFetchEnv(
  config: Readonly<Config>,
  route: UpstreamRoute,
): Promise<Record<string, string> | undefined> {
  if (!config.git.enabled || config.offline || !route.proxy) return undefined;
  const bundleFile = join(config.storageDir, 'git', 'upstream-ca.pem');
  return prepareGitNetwork({
    upstreamUrl: config.git.url,
    proxy: route.proxy,
    ...(route.ca && { ca: { ca: route.ca, bundleFile } }),
  });
}

/** The git index mirror, unless `--no-git`. It lives under the storage root. */
export function createGitMirror(
  config: Readonly<Config>,
  log: AppLogger,
  extra: Pick<GitMirrorOptions, 'filter' | 'localIndex' | 'fetchEnv'> = {},
): GitMirror | undefined {
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
    ...extra,
  });
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}

/** The inputs of {@link createServices}. */
export interface ServiceInputs {
  config: Readonly<Config>;
  log: AppLogger;
  storage: Pick<OpenedStorage, 'store' | 'catalogue' | 'hotCrates'>;
  http: HttpClient;
  /** The git index mirror, when served (`--no-git` leaves it out). */
  git?: GitMirror;
  /** Told about every upstream request (statistics: health, latency, failures). */
  upstreamObserver?: UpstreamObserver;
  now?: () => number;
  /** The supply-chain policy (servers; the one-shot commands have none). */
  policy?: LivePolicy;
  /** Told about every decision of the policy (statistics). */
  policyObserver?: PolicyObserver;
  /** Waits on the instance's clock (the registry API's rate limit); default a timer. */
  sleep?: (ms: number) => Promise<unknown>;
}

/** Builds the caches for one instance. */
export function createServices(inputs: ServiceInputs): AppDeps {
  const { config, log, git } = inputs;
  const { store, catalogue, hotCrates } = inputs.storage;
  const guards = createGuards(inputs);
  const storageGuard = new StorageWriteGuard(log, inputs.now);
  const sparse = createSparseUpstream(inputs, guards.index);
  const source = chooseIndexSource(inputs, sparse);
  const purger =
    inputs.policy && !config.policy.keepRemoved
      ? new RemovalPurger({
          store,
          catalogue,
          log,
          onPurged: (crate) =>
            inputs.policyObserver?.({ kind: 'purged', reason: 'removed', crate }),
        })
      : undefined;
  const index = new IndexCache({
    store,
    source,
    ttlMs: config.indexTtlMs,
    offline: config.offline,
    log,
    storageGuard,
    ...(inputs.now && { now: inputs.now }),
    ...(purger && { onRemoved: (name, versions) => purger.removed(name, versions) }),
  });
  const registryConfig = new RegistryConfigService(index, config.crateUpstreams);
  const crates = new CrateCache({
    store,
    index,
    registryConfig,
    http: observedHttp(inputs, 'crate'),
    offline: config.offline,
    onlyHeld: config.onlyHeld,
    maxCrateBytes: config.maxCrateBytes,
    log,
    guard: guards.crate,
    storageGuard,
    catalogue,
    hotCrates,
    ...(inputs.policy && { policy: inputs.policy }),
    ...(inputs.policyObserver && { onPolicyEvent: inputs.policyObserver }),
    ...(inputs.now && { now: inputs.now }),
  });
  const jobs = new JobRegistry();
  const prefetcher = new Prefetcher({ index, crates, jobs, threads: config.threads, log });
  return {
    config,
    log,
    store,
    index,
    crates,
    toolchains: createToolchainCache(inputs, guards.rustup),
    registryConfig,
    registryApi: createRegistryApi(inputs, registryConfig, storageGuard),
    jobs,
    prefetcher,
    circuits: () => guards.index.circuits(),
    storageHealth: () => storageGuard.health(),
    ...(purger && { removals: purger }),
    ...(inputs.policy && { policy: inputs.policy }),
    ...(sparse && { sparse }),
    indexView: chainViews([
      inputs.policy &&
        new PolicyIndexView(inputs.policy, {
          ...(inputs.now && { now: inputs.now }),
          onWithheld: observeWithheld(log, inputs.policyObserver),
        }),
      new HeldIndexView(catalogue, {
        always: config.offline || config.onlyHeld,
        upstreamFailing: () => index.upstreamFailing,
      }),
    ]),
    ...(git && { git }),
  };
}

/**
 * Sparse upstream, falling back to the git mirror; or the git mirror alone (`--sparse none`,
 * and `--offline`, where the local mirror is the only source that contacts no upstream).
 */
function chooseIndexSource(
  inputs: ServiceInputs,
  sparse: SparseUpstream | undefined,
): IndexSource | undefined {
  const { config, git, log } = inputs;
  if (config.offline) return git ? new GitIndexSource(git) : undefined;
  if (!git) return sparse;
  return sparse ? new FallbackIndexSource(sparse, git, log) : new GitIndexSource(git);
}

/** The upstream sparse index (`-s`), unless `--sparse none` or `--offline`. */
function createSparseUpstream(
  inputs: ServiceInputs,
  guard: UpstreamGuard,
): SparseUpstream | undefined {
  const { config } = inputs;
  if (config.offline || config.sparseUpstreams.length === 0) return undefined;
  return new SparseUpstream(observedHttp(inputs, 'index'), config.sparseUpstreams, guard);
}

/**
 * Retries and failover for both upstreams, with a circuit breaker per upstream (index or
 * crates) and host, kept in one registry so /health lists them all.
 */
function createGuards(inputs: ServiceInputs): Record<UpstreamSource, UpstreamGuard> {
  const { resilience } = inputs.config;
  const breakers = new CircuitBreakers({
    failures: resilience.breakerFailures,
    coolDownMs: resilience.breakerCoolDownMs,
    log: inputs.log,
    ...(inputs.now && { now: inputs.now }),
  });
  const guard = (scope: UpstreamSource) =>
    new UpstreamGuard({ policy: resilience, breakers, scope, log: inputs.log });
  return { index: guard('index'), crate: guard('crate'), rustup: guard('rustup') };
}

/** The toolchain cache (rustup's dist server): fetching from `--rustup-upstream` unless offline. */
function createToolchainCache(inputs: ServiceInputs, guard: UpstreamGuard): ToolchainCache {
  const { config, log, storage } = inputs;
  const url = config.offline ? undefined : config.rustup.upstream;
  return new ToolchainCache({
    store: storage.store,
    catalogue: storage.catalogue,
    upstream:
      url === undefined
        ? undefined
        : new RustupUpstream(observedHttp(inputs, 'rustup'), url, guard),
    ttlMs: config.rustup.ttlMs,
    stateDir: config.storageDir,
    log,
    ...(inputs.now && { now: inputs.now }),
  });
}

/**
 * The registry API through the cache: upstream's `api` (named by its config.json) asked at most
 * once a second, with a bounded queue (crates.io's data-access policy); `--offline`: the cache
 * only.
 */
function createRegistryApi(
  inputs: ServiceInputs,
  registryConfig: RegistryConfigService,
  storageGuard: StorageWriteGuard,
): ApiCache {
  const { config, log, storage } = inputs;
  const clock = {
    ...(inputs.now && { now: inputs.now }),
    ...(inputs.sleep && { sleep: inputs.sleep }),
  };
  const upstream = config.offline
    ? undefined
    : new CratesApiUpstream({
        http: inputs.http,
        apiRoot: async () => {
          const { api } = (await registryConfig.upstreamConfig()).config;
          return typeof api === 'string' && api !== '' ? api : undefined;
        },
        limiter: new RateLimiter({
          intervalMs: CRATES_IO_API_INTERVAL_MS,
          maxQueue: CRATES_IO_API_QUEUE,
          target: "upstream's registry API",
          ...clock,
        }),
      });
  return new ApiCache({
    store: storage.store,
    upstream,
    log,
    storageGuard,
    ...(inputs.now && { now: inputs.now }),
  });
}

/** The upstream client, reporting to the upstream observer when there is one. */
function observedHttp(inputs: ServiceInputs, source: UpstreamSource): HttpClient {
  const { http, upstreamObserver } = inputs;
  return upstreamObserver ? observeHttpClient(http, source, upstreamObserver) : http;
}
