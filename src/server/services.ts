/**
 * @module
 * Wires the caches from configuration, storage and the upstream client. The CLI and the tests
 * both build instances through here.
 */
import { CrateCache } from '../cache/crate-cache.ts';
import { IndexCache, type IndexSource } from '../cache/index-cache.ts';
import { FallbackIndexSource, GitIndexSource } from '../cache/index-sources.ts';
import { RegistryConfigService } from '../cache/registry-config-service.ts';
import type { Config } from '../config.ts';
import type { GitMirror } from '../git/git-mirror.ts';
import { JobRegistry } from '../jobs/job.ts';
import { Prefetcher } from '../jobs/prefetcher.ts';
import type { AppLogger } from '../logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
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
  const { config, log, store, git } = inputs;
  const source = chooseIndexSource(inputs);
  const index = new IndexCache({
    store,
    source,
    ttlMs: config.indexTtlMs,
    offline: config.offline,
    log,
    ...(inputs.now && { now: inputs.now }),
  });
  const registryConfig = new RegistryConfigService(index, config.crateUpstream);
  const crates = new CrateCache({
    store,
    index,
    registryConfig,
    http: observedHttp(inputs, 'crate'),
    offline: config.offline,
    maxCrateBytes: config.maxCrateBytes,
    log,
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
    ...(git && { git }),
  };
}

/**
 * Sparse upstream, falling back to the git mirror; or the git mirror alone (`--sparse none`,
 * and `--offline`, where the local mirror is the only source that contacts no upstream).
 */
function chooseIndexSource(inputs: ServiceInputs): IndexSource | undefined {
  const { config, git, log } = inputs;
  if (config.offline) return git ? new GitIndexSource(git) : undefined;
  const sparse = config.sparseUpstream
    ? new SparseUpstream(observedHttp(inputs, 'index'), config.sparseUpstream)
    : undefined;
  if (!git) return sparse;
  return sparse ? new FallbackIndexSource(sparse, git, log) : new GitIndexSource(git);
}

/** The upstream client, reporting to the upstream observer when there is one. */
function observedHttp(inputs: ServiceInputs, source: UpstreamSource): HttpClient {
  const { http, upstreamObserver } = inputs;
  return upstreamObserver ? observeHttpClient(http, source, upstreamObserver) : http;
}
