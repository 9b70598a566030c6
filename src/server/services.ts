/**
 * @module
 * Wires the caches from configuration, storage and the upstream client. The CLI and the tests
 * both build instances through here.
 */
import { CrateCache } from '../cache/crate-cache.ts';
import { IndexCache } from '../cache/index-cache.ts';
import { RegistryConfigService } from '../cache/registry-config-service.ts';
import type { Config } from '../config.ts';
import type { AppLogger } from '../logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { HttpClient } from '../upstream/http-client.ts';
import { SparseUpstream } from '../upstream/sparse-index.ts';
import type { AppDeps } from './app.ts';

/** The inputs of {@link createServices}. */
export interface ServiceInputs {
  config: Readonly<Config>;
  log: AppLogger;
  store: BlobStore;
  http: HttpClient;
  now?: () => number;
}

/** Builds the caches for one instance. */
export function createServices(inputs: ServiceInputs): AppDeps {
  const { config, log, store, http } = inputs;
  const source = config.sparseUpstream
    ? new SparseUpstream(http, config.sparseUpstream)
    : undefined;
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
    http,
    offline: config.offline,
    maxCrateBytes: config.maxCrateBytes,
    log,
  });
  return { config, log, store, index, crates, registryConfig };
}
