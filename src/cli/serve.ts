/**
 * @module
 * `cargo-cacher` (serve): builds one instance from the flags (and the environment and config
 * file, config-layers.ts) and runs it until SIGINT/SIGTERM; SIGHUP reloads (src/reload.ts).
 */
import { resolve } from 'node:path';
import { buildConfig, type Config, type TlsFiles } from '../config.ts';
import { Errors } from '../errors.ts';
import { startInstance } from '../instance.ts';
import { type AppLogger, createLogger, levelForVerbosity } from '../logger.ts';
import { Reloader } from '../reload.ts';
import { redactUrl } from '../upstream/redact-url.ts';
import { describeUpstreamProxy } from '../upstream/upstream-proxy.ts';
import type { SettingsSource } from './config-layers.ts';
import type { ServeOptions } from './main.ts';
import { handleSignals } from './signals.ts';
import { s3SettingsFromFlags } from './storage-options.ts';

/** Turns parsed flags into a validated config. */
export function configFromOptions(options: ServeOptions): Readonly<Config> {
  return buildConfig({
    port: options.port,
    listen: options.listen,
    storageDir: resolve(options.index),
    s3: s3SettingsFromFlags(options),
    sparseUpstream: options.sparse,
    crateUpstream: options.upstream,
    publicUrl: options.publicUrl,
    indexTtlMs: options.indexTtl,
    gitRefreshMs: options.refresh,
    git: {
      enabled: options.git !== false,
      url: typeof options.git === 'string' ? options.git : '',
    },
    offline: options.offline,
    onlyHeld: options.onlyHeld,
    all: options.all,
    skipYanked: options.skipYanked,
    mirrorFilters: options.mirrorFilter,
    mirrorKeep: options.mirrorKeep,
    prefetch: options.prefetch,
    upkeep: {
      maxSizeBytes: options.maxSize,
      expireAfterMs: options.expireAfter,
      pins: options.pin,
      gcIntervalMs: options.gcInterval,
      verifyEveryMs: options.verifyEvery,
    },
    threads: options.threads,
    timeouts: {
      connectMs: options.upstreamConnectTimeout,
      headersMs: options.upstreamTimeout,
      bodyMs: options.upstreamBodyTimeout,
    },
    upstreamProxy: options.upstreamProxy,
    proxyEnv: process.env,
    upstreamCa: options.upstreamCa,
    maxCrateBytes: options.maxCrateSize,
    clientLimits: {
      headersTimeoutMs: options.clientHeaderTimeout,
      requestTimeoutMs: options.clientBodyTimeout,
      idleTimeoutMs: options.clientIdleTimeout,
      sendTimeoutMs: options.clientSendTimeout,
      maxConnections: options.maxConnections,
      maxConnectionsPerIp: options.maxConnectionsPerIp,
    },
    authTokenFile: options.authTokenFile,
    policy: {
      minPublishAgeMs: options.minPublishAge,
      denyFile: options.deny,
      allowYoungFile: options.allowYoung,
      keepRemoved: options.keepRemoved,
      withheldAs: options.withheldAs,
    },
    rustup: {
      upstream: options.rustupUpstream,
      ttlMs: options.rustupTtl,
      mirror: options.rustupMirror,
      targets: options.rustupTargets,
      profile: options.rustupProfile,
    },
    logLevel: levelForVerbosity(typeof options.debug === 'number' ? options.debug : 1),
    logFormat: options.logFormat,
    tls: tlsFiles(options),
    shutdownTimeoutMs: options.shutdownTimeout,
  });
}

/** `--tls-cert` and `--tls-key` go together: one without the other is a mistake. */
function tlsFiles(options: ServeOptions): TlsFiles | undefined {
  const { tlsCert, tlsKey } = options;
  if (tlsCert === undefined && tlsKey === undefined) return undefined;
  if (tlsCert === undefined || tlsKey === undefined) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('--tls-cert and --tls-key must be given together');
  }
  return { certFile: resolve(tlsCert), keyFile: resolve(tlsKey) };
}

/**
 * Starts the proxy and resolves once it listens. `settings` says where the options came from,
 * so that SIGHUP can read the config file again.
 */
export async function serve(options: ServeOptions, settings?: SettingsSource): Promise<void> {
  const config = configFromOptions(options);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const instance = await startInstance(config, log);
  logStartup(log, config, instance.url, instance.deps.store.location);
  if (settings?.file !== undefined) log.notice({ configFile: settings.file }, 'config file read');
  const reloader = new Reloader({
    instance,
    log,
    config,
    reread: async () =>
      configFromOptions((settings ? await settings.reread() : options) as ServeOptions),
  });
  handleSignals({
    log,
    close: () => instance.close(),
    shutdownTimeoutMs: () => reloader.config.shutdownTimeoutMs,
    reload: () => reloader.reload(),
  });
}

/** The startup line. Every URL an operator configured is shown with its credentials hidden. */
function logStartup(log: AppLogger, config: Readonly<Config>, url: string, storage: string): void {
  const upstream = config.offline
    ? 'none (--offline)'
    : config.sparseUpstream === undefined
      ? 'none'
      : redactUrl(config.sparseUpstream);
  const { proxy, caFile } = config.upstreamNetwork;
  const via =
    config.offline || proxy.https === undefined ? '' : ` via proxy ${redactUrl(proxy.https)}`;
  log.notice(
    {
      listen: new URL(url).host,
      storage,
      ...(config.s3 && { stateDir: config.storageDir }),
      sparseUpstream:
        config.sparseUpstreams.length > 0 ? config.sparseUpstreams.map(redactUrl) : 'none',
      crateUpstream:
        config.crateUpstreams.length > 0
          ? config.crateUpstreams.map(redactUrl)
          : "upstream config.json's dl",
      gitUpstream: config.git.enabled ? redactUrl(config.git.url) : 'none (--no-git)',
      upstreamProxy: describeUpstreamProxy(proxy),
      ...(caFile !== undefined && { upstreamCa: caFile }),
      offline: config.offline,
    },
    `cargo-cacher listening on ${url}, storing in ${storage}, upstream ${upstream}${via}`,
  );
}
