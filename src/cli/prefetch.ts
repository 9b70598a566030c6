/**
 * @module
 * `cargo-cacher prefetch <path>... [--toolchain <channel>]...`: the one-shot form for CI. Fills
 * the storage from lock files or `name=version` lists, and with the toolchains of the channels
 * given, and exits 0 when everything is cached and verified, else 1 with a list of what failed.
 */
import { resolve } from 'node:path';
import { buildConfig, type RustupProfile } from '../config.ts';
import { Errors } from '../errors.ts';
import { createServices, openStorage } from '../instance.ts';
import { readPrefetchPaths } from '../jobs/prefetch-input.ts';
import { createLogger, levelForVerbosity } from '../logger.ts';
import { LivePolicy } from '../policy/live-policy.ts';
import { createHttpClient } from '../upstream/http-client.ts';
import { readUpstreamRoute } from '../upstream/upstream-route.ts';
import { prefetchToolchains } from './prefetch-toolchains.ts';
import { type StorageFlags, s3SettingsFromFlags } from './storage-options.ts';

/** Flags of the prefetch command. */
export interface PrefetchOptions extends StorageFlags {
  index: string;
  sparse?: string | undefined;
  upstream?: string | undefined;
  threads: number;
  minPublishAge?: number | undefined;
  allowYoung?: string | undefined;
  deny?: string | undefined;
  upstreamProxy?: string | undefined;
  upstreamCa?: string | undefined;
  /** `--toolchain` (repeatable): channels whose toolchains are fetched too. */
  toolchain?: string[];
  rustupUpstream?: string | undefined;
  rustupTargets?: string[] | undefined;
  rustupProfile?: RustupProfile;
  debug: number | true;
}

/** Runs the prefetch and sets the process exit code. */
export async function prefetchCommand(paths: string[], options: PrefetchOptions): Promise<void> {
  const config = buildConfig({
    storageDir: resolve(options.index),
    s3: s3SettingsFromFlags(options),
    sparseUpstream: options.sparse,
    crateUpstream: options.upstream,
    threads: options.threads,
    upstreamProxy: options.upstreamProxy,
    proxyEnv: process.env,
    upstreamCa: options.upstreamCa,
    policy: {
      minPublishAgeMs: options.minPublishAge,
      denyFile: options.deny,
      allowYoungFile: options.allowYoung,
    },
    rustup: {
      upstream: options.rustupUpstream,
      targets: options.rustupTargets,
      profile: options.rustupProfile,
    },
    logLevel: levelForVerbosity(typeof options.debug === 'number' ? options.debug : 1),
  });
  const log = createLogger({ level: config.logLevel, format: 'json' });
  const toolchains = options.toolchain ?? [];
  if (paths.length === 0 && toolchains.length === 0) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('prefetch needs a lock file, a list or --toolchain');
  }
  const request = paths.length > 0 ? await readPrefetchPaths(paths) : undefined;
  // The same supply-chain policy as a server: a withheld version is reported, never stored.
  const policy = await LivePolicy.load(config.policy, log);
  const route = await readUpstreamRoute(config.upstreamNetwork);
  const storage = await openStorage(config, log);
  const http = createHttpClient(config.timeouts, route);
  try {
    const deps = createServices({ config, log, storage, http, policy });
    const { prefetcher, removals } = deps;
    const tty = process.stderr.isTTY === true;
    let failures = 0;
    if (request) {
      const job = await prefetcher.run(request, `prefetch of ${request.files.join(', ')}`, { tty });
      const failed = job.report.filter((entry) => entry.status === 'failed');
      for (const entry of failed) {
        process.stderr.write(`failed: ${entry.name} ${entry.version}: ${entry.reason}\n`);
      }
      failures += failed.length;
    }
    if (toolchains.length > 0) {
      failures += await prefetchToolchains(deps, storage.catalogue, config, toolchains, log);
    }
    process.exitCode = failures === 0 ? 0 : 1;
    // Versions a revalidation showed removed upstream are purged before the storage closes.
    await removals?.idle();
  } finally {
    await http.close();
    await storage.close();
  }
}
