/**
 * @module
 * Wires the caches from configuration, storage and the upstream client. The CLI and the tests
 * both build instances through here.
 */
import { CrateCache } from '../cache/crate-cache.ts';
import { evictOnChange, HotCrates } from '../cache/hot-crates.ts';
import { IndexCache, type IndexSource } from '../cache/index-cache.ts';
import { FallbackIndexSource, GitIndexSource } from '../cache/index-sources.ts';
import { RegistryConfigService } from '../cache/registry-config-service.ts';
import { StorageWriteGuard } from '../cache/storage-guard.ts';
import type { Config } from '../config.ts';
import type { GitMirror } from '../git/git-mirror.ts';
import { JobRegistry } from '../jobs/job.ts';
import { Prefetcher } from '../jobs/prefetcher.ts';
import type { AppLogger } from '../logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { CircuitBreakers } from '../upstream/circuit-breaker.ts';
import { UpstreamGuard } from '../upstream/failover.ts';
import type { HttpClient } from '../upstream/http-client.ts';
import {
  observeHttpClient,
  type UpstreamObserver,
  type UpstreamSource,
} from '../upstream/observed-client.ts';
import { SparseUpstream } from '../upstream/sparse-index.ts';
import type { AppDeps } from './app.ts';

/** The inputs of {@link createServices}. */
export interface ServiceInputs {
  config: Readonly<Config>;
  log: AppLogger;
  store: BlobStore;
  http: HttpClient;
  /** The git index mirror, when served (`--no-git` leaves it out). */
  git?: GitMirror;
  /** Told about every upstream request (statistics: health, latency, failures). */
  upstreamObserver?: UpstreamObserver;
  now?: () => number;
}

/** Builds the caches for one instance. */
export function createServices(inputs: ServiceInputs): AppDeps {
  const { config, log, git } = inputs;
  const hotCrates = new HotCrates();
  // Everything below deletes and writes through this view, which keeps hotCrates in step.
  const store = evictOnChange(inputs.store, hotCrates);
  const guards = createGuards(inputs);
  const storageGuard = new StorageWriteGuard(log, inputs.now);
  const source = chooseIndexSource(inputs, guards.index);
  const index = new IndexCache({
    store,
    source,
    ttlMs: config.indexTtlMs,
    offline: config.offline,
    log,
    storageGuard,
    ...(inputs.now && { now: inputs.now }),
  });
  const registryConfig = new RegistryConfigService(index, config.crateUpstreams);
  const crates = new CrateCache({
    store,
    index,
    registryConfig,
    http: observedHttp(inputs, 'crate'),
    offline: config.offline,
    maxCrateBytes: config.maxCrateBytes,
    log,
    guard: guards.crate,
    storageGuard,
  });
  const jobs = new JobRegistry();
  const prefetcher = new Prefetcher({ index, crates, jobs, threads: config.threads, log });
  return {
    config,
    log,
    store,
    index,
    crates,
    registryConfig,
    jobs,
    prefetcher,
    hotCrates,
    circuits: () => guards.index.circuits(),
    storageHealth: () => storageGuard.health(),
    ...(git && { git }),
  };
}

/**
 * Sparse upstream, falling back to the git mirror; or the git mirror alone (`--sparse none`,
 * and `--offline`, where the local mirror is the only source that contacts no upstream).
 */
function chooseIndexSource(inputs: ServiceInputs, guard: UpstreamGuard): IndexSource | undefined {
  const { config, git, log } = inputs;
  if (config.offline) return git ? new GitIndexSource(git) : undefined;
  const sparse =
    config.sparseUpstreams.length > 0
      ? new SparseUpstream(observedHttp(inputs, 'index'), config.sparseUpstreams, guard)
      : undefined;
  if (!git) return sparse;
  return sparse ? new FallbackIndexSource(sparse, git, log) : new GitIndexSource(git);
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
  return { index: guard('index'), crate: guard('crate') };
}

/** The upstream client, reporting to the upstream observer when there is one. */
function observedHttp(inputs: ServiceInputs, source: UpstreamSource): HttpClient {
  const { http, upstreamObserver } = inputs;
  return upstreamObserver ? observeHttpClient(http, source, upstreamObserver) : http;
}
