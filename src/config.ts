/**
 * @module
 * The validated configuration of a cargo-cacher instance. The CLI builds it from flags; tests
 * build it directly. Frozen once built.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Errors } from './errors.ts';
import type { LogFormat, LogLevel } from './logger.ts';
import { currentHostTriple } from './registry/host-triple.ts';
import type { WithheldAs } from './registry/policy.ts';
import { manifestPathOfChannel } from './registry/rustup-paths.ts';
import type { S3Settings } from './storage/s3-location.ts';
import {
  type ProxyEnvironment,
  resolveUpstreamProxy,
  type UpstreamProxy,
} from './upstream/upstream-proxy.ts';

/** Upstream HTTP timeouts, in milliseconds. */
export interface UpstreamTimeouts {
  connectMs: number;
  headersMs: number;
  bodyMs: number;
}

/**
 * How upstream failures are handled: idempotent GETs are retried with backoff, and a host
 * that keeps failing is left alone for a while (circuit breaker).
 */
export interface UpstreamResilience {
  /** Tries per request over all upstreams (1 = no retry). */
  attempts: number;
  /** Delay before the first retry round; doubled per round, with jitter. */
  retryDelayMs: number;
  /** A `Retry-After` up to this long is waited for; a longer one is passed on to cargo. */
  maxRetryAfterMs: number;
  /** Consecutive failures of one host that open its circuit. */
  breakerFailures: number;
  /** How long an open circuit stays open before one probe may go through. */
  breakerCoolDownMs: number;
}

/** How upstreams are reached, by undici and by the git mirror alike. */
export interface UpstreamNetwork {
  /** The outbound proxy: `--upstream-proxy`, else `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`. */
  proxy: UpstreamProxy;
  /** `--upstream-ca`: a PEM file (absolute) trusted besides the default roots. */
  caFile: string | undefined;
}

/** Where the PEM files are (`--tls-cert`, `--tls-key`): with them, HTTPS with HTTP/2. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/**
 * What one client connection may hold and for how long (docs/RELIABILITY.md, "Connection limits
 * and timeouts"). The names follow nginx's, whose defaults an operator already knows.
 */
export interface ClientLimits {
  /** The request line and headers must arrive within this (nginx `client_header_timeout`). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (bodies here are lock files). */
  requestTimeoutMs: number;
  /** A connection with no request in progress is closed after this (nginx `keepalive_timeout`). */
  idleTimeoutMs: number;
  /** A response the client does not read for this long is aborted (nginx `send_timeout`). */
  sendTimeoutMs: number;
  /** Open client connections in all; `undefined`: derived from the open-files limit at start. */
  maxConnections: number | undefined;
  /** Open connections from one address (IPv6: one /64). */
  maxConnectionsPerIp: number;
}

/** Everything an instance needs to know. */
export interface Config {
  port: number;
  listen: string;
  /**
   * Absolute storage root (`-i`). With `s3` set, only this instance's own state lives here
   * (stats.sqlite, the git mirror); crates and index files are in the bucket.
   */
  storageDir: string;
  /** `--storage s3://bucket/prefix`: crates and index files in S3; `undefined`: in `storageDir`. */
  s3: S3Settings | undefined;
  /** Upstream sparse index root, ending in `/`; `undefined` when switched off (`--sparse none`). */
  sparseUpstream: string | undefined;
  /** Every upstream sparse index (`-s a,b`), tried in order; the first is `sparseUpstream`. */
  sparseUpstreams: string[];
  /** Crate download template (`-u`); `undefined` means: the `dl` of upstream's config.json. */
  crateUpstream: string | undefined;
  /** Every crate download template (`-u a,b`), tried in order; the first is `crateUpstream`. */
  crateUpstreams: string[];
  /** URL clients reach the proxy at, without trailing slash (`-e`). */
  publicUrl: string | undefined;
  indexTtlMs: number;
  gitRefreshMs: number;
  git: { enabled: boolean; url: string };
  offline: boolean;
  /**
   * `--only-held`: index files list only the versions whose `.crate` is held, and a download
   * of anything else is refused (404) instead of fetched; jobs still fetch.
   */
  onlyHeld: boolean;
  all: boolean;
  /** With `-a`: leave yanked versions out. */
  skipYanked: boolean;
  /** `--mirror-filter` files (absolute): with `-a`, mirror their roots and closure only. */
  mirrorFilters: string[];
  /** `--mirror-keep`: the newest n versions of each crate root of the filters. */
  mirrorKeep: number;
  prefetch: string[];
  /** Expiration and integrity (all off by default: a cache asked to keep everything does). */
  upkeep: UpkeepSettings;
  threads: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  timeouts: UpstreamTimeouts;
  resilience: UpstreamResilience;
  /** Outbound proxy and extra CA for every upstream request. */
  upstreamNetwork: UpstreamNetwork;
  /** `--auth-token-file`: when set, every request but /health needs a token from it. */
  authTokenFile: string | undefined;
  /** Largest `.crate` accepted from upstream. */
  maxCrateBytes: number;
  /** Serve HTTPS with HTTP/2 (and HTTP/1.1) from these files; `undefined`: plain HTTP. */
  tls: TlsFiles | undefined;
  /** Deadlines and connection caps for clients. */
  clientLimits: ClientLimits;
  /** The supply-chain policy: cooldown, deny list, exemptions, upstream removals. */
  policy: PolicySettings;
  /** rustup's dist server through the cache: upstream, revalidation, the toolchain mirror. */
  rustup: RustupSettings;
  /**
   * `--shutdown-timeout`: on SIGTERM, in-flight responses and running job packages get this
   * long to finish; what is still running then is abandoned.
   */
  shutdownTimeoutMs: number;
}

/** The supply-chain policy's settings (see docs: "Supply-chain protection"). */
export interface PolicySettings {
  /** `--min-publish-age`: versions published more recently are withheld. */
  minPublishAgeMs: number | undefined;
  /** `--deny`: a file of denied crates and versions, re-read when it changes. */
  denyFile: string | undefined;
  /** `--allow-young`: a file of versions exempt from the cooldown, re-read when it changes. */
  allowYoungFile: string | undefined;
  /** `--keep-removed`: keep serving versions upstream removed from its index. */
  keepRemoved: boolean;
  /** `--withheld-as`: withheld versions served marked yanked (the default) or left out. */
  withheldAs: WithheldAs;
}

/** The profiles rustup installs (`--rustup-profile`). */
export const RUSTUP_PROFILES = ['minimal', 'default', 'complete'] as const;
export type RustupProfile = (typeof RUSTUP_PROFILES)[number];

/** Toolchains (README "Toolchains"). */
export interface RustupSettings {
  /** `--rustup-upstream`, without a trailing slash; `undefined` with `none`. */
  upstream: string | undefined;
  /** `--rustup-ttl`: how long an undated manifest or rustup-init is trusted. */
  ttlMs: number;
  /** `--rustup-mirror`: channels downloaded in the background (`stable`, `1.90.0`, …). */
  mirror: string[];
  /** `--rustup-targets`: the targets the mirror downloads for (default: this machine's). */
  targets: string[];
  /** `--rustup-profile`: the components the mirror downloads. */
  profile: RustupProfile;
}

/** Expiration and integrity settings. */
export interface UpkeepSettings {
  /** `--max-size`: keep the crate cache under this many bytes. */
  maxSizeBytes: number | undefined;
  /** `--expire-after`: remove crates not served for this long. */
  expireAfterMs: number | undefined;
  /** `--pin` files: versions never removed (the `-f` files are pinned too). */
  pins: string[];
  /** How often the expiration sweep runs. */
  gcIntervalMs: number;
  /** `--verify-every`: re-hash the cache in the background this often. */
  verifyEveryMs: number | undefined;
}

/** The defaults, matching the seed where it had one. */
export const DEFAULTS = {
  port: 8080,
  listen: '0.0.0.0',
  sparseUpstream: 'https://index.crates.io/',
  indexTtlMs: 60_000,
  gitRefreshMs: 600_000,
  gcIntervalMs: 600_000,
  shutdownTimeoutMs: 30_000,
  rustupUpstream: 'https://static.rust-lang.org',
  gitUrl: 'https://github.com/rust-lang/crates.io-index.git',
  threads: 16,
  timeouts: { connectMs: 10_000, headersMs: 30_000, bodyMs: 30_000 },
  // cargo waits 30 s for a slow transfer and retries 3 times itself: a few quick retries here
  // hide a blip from it, and longer waits are left to cargo's own backoff.
  resilience: {
    attempts: 3,
    retryDelayMs: 200,
    maxRetryAfterMs: 5_000,
    breakerFailures: 5,
    breakerCoolDownMs: 30_000,
  },
  // crates.io's own limit is 10 MB by default, with exceptions granted up to a few hundred MB.
  maxCrateBytes: 1024 ** 3,
  clientLimits: {
    headersTimeoutMs: 10_000,
    // The largest body accepted is a Cargo.lock for /api/v1/prefetch (a few hundred KB) or a
    // git fetch negotiation: 30 s is ample on any link cargo itself would still use.
    requestTimeoutMs: 30_000,
    // cargo reuses a connection for requests that follow within a build step; an idle one is
    // cheap to reopen, and holding it costs a file descriptor.
    idleTimeoutMs: 5_000,
    // cargo's own `http.timeout` gives up on a transfer that stalls for 30 s.
    sendTimeoutMs: 30_000,
    maxConnections: undefined,
    maxConnectionsPerIp: 256,
  },
} as const;

/** The default storage root, `$HOME/.crates` as in the seed. */
export function defaultStorageDir(): string {
  return join(homedir(), '.crates');
}

/** What {@link buildConfig} takes: any subset of the settings. */
export type ConfigSettings = Partial<
  Omit<
    Config,
    | 'upkeep'
    | 'resilience'
    | 'sparseUpstreams'
    | 'crateUpstreams'
    | 'clientLimits'
    | 'policy'
    | 'upstreamNetwork'
    | 'rustup'
  >
> & {
  rustup?: Partial<RustupSettings>;
  upkeep?: Partial<UpkeepSettings>;
  policy?: Partial<PolicySettings>;
  resilience?: Partial<UpstreamResilience>;
  clientLimits?: Partial<ClientLimits>;
  /** `--upstream-proxy`: a proxy URL for both schemes, or `none`; unset: from `proxyEnv`. */
  upstreamProxy?: string | undefined;
  /**
   * Where `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` are read (the CLI passes `process.env`);
   * default: nowhere, so an instance built in a test never picks up the caller's proxy.
   */
  proxyEnv?: ProxyEnvironment;
  /** `--upstream-ca`: a PEM file trusted for upstreams besides the default roots. */
  upstreamCa?: string | undefined;
};

/** Builds a frozen config from partial settings, filling in defaults and checking values. */
export function buildConfig(settings: ConfigSettings = {}): Readonly<Config> {
  const sparse = 'sparseUpstream' in settings ? settings.sparseUpstream : DEFAULTS.sparseUpstream;
  const sparseUpstreams = splitList(sparse).map((url) =>
    checkHttpUrl('--sparse', url).replace(/\/*$/, '/'),
  );
  const crateUpstreams = splitList(settings.crateUpstream).map((url) =>
    checkHttpUrl('--upstream', url),
  );
  const config: Config = {
    port: settings.port ?? DEFAULTS.port,
    listen: settings.listen ?? DEFAULTS.listen,
    storageDir: resolve(settings.storageDir ?? defaultStorageDir()),
    s3: settings.s3,
    sparseUpstream: sparseUpstreams[0],
    sparseUpstreams,
    crateUpstream: crateUpstreams[0],
    crateUpstreams,
    publicUrl: settings.publicUrl?.replace(/\/+$/, ''),
    indexTtlMs: settings.indexTtlMs ?? DEFAULTS.indexTtlMs,
    gitRefreshMs: settings.gitRefreshMs ?? DEFAULTS.gitRefreshMs,
    git: settings.git ?? { enabled: false, url: DEFAULTS.gitUrl },
    offline: settings.offline ?? false,
    onlyHeld: settings.onlyHeld ?? false,
    all: settings.all ?? false,
    skipYanked: settings.skipYanked ?? false,
    mirrorFilters: (settings.mirrorFilters ?? []).map((file) => resolve(file)),
    mirrorKeep: settings.mirrorKeep ?? 1,
    prefetch: settings.prefetch ?? [],
    upkeep: {
      maxSizeBytes: undefined,
      expireAfterMs: undefined,
      pins: [],
      gcIntervalMs: DEFAULTS.gcIntervalMs,
      verifyEveryMs: undefined,
      ...settings.upkeep,
    },
    threads: settings.threads ?? DEFAULTS.threads,
    logLevel: settings.logLevel ?? 'warn',
    logFormat: settings.logFormat ?? 'json',
    timeouts: settings.timeouts ?? { ...DEFAULTS.timeouts },
    resilience: { ...DEFAULTS.resilience, ...settings.resilience },
    upstreamNetwork: {
      proxy: resolveUpstreamProxy(settings.upstreamProxy, settings.proxyEnv),
      caFile: settings.upstreamCa && resolve(settings.upstreamCa),
    },
    authTokenFile: settings.authTokenFile && resolve(settings.authTokenFile),
    maxCrateBytes: settings.maxCrateBytes ?? DEFAULTS.maxCrateBytes,
    tls: settings.tls && {
      certFile: resolve(settings.tls.certFile),
      keyFile: resolve(settings.tls.keyFile),
    },
    clientLimits: { ...DEFAULTS.clientLimits, ...withoutUndefined(settings.clientLimits) },
    policy: {
      minPublishAgeMs: settings.policy?.minPublishAgeMs,
      denyFile: settings.policy?.denyFile && resolve(settings.policy.denyFile),
      allowYoungFile: settings.policy?.allowYoungFile && resolve(settings.policy.allowYoungFile),
      keepRemoved: settings.policy?.keepRemoved ?? false,
      withheldAs: settings.policy?.withheldAs ?? 'yanked',
    },
    shutdownTimeoutMs: settings.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs,
    rustup: rustupSettings(settings.rustup ?? {}, settings.indexTtlMs),
  };
  checkConfig(config);
  return Object.freeze(config);
}

function checkConfig(config: Config): void {
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`port must be 0-65535, got ${config.port}`);
  }
  if (!Number.isInteger(config.threads) || config.threads < 1 || config.threads > 1024) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`threads must be 1-1024, got ${config.threads}`);
  }
  const { timeouts, resilience } = config;
  if (![timeouts.connectMs, timeouts.headersMs, timeouts.bodyMs].every((ms) => ms >= 1)) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('upstream timeouts must be at least 1ms');
  }
  if (!Number.isInteger(resilience.attempts) || resilience.attempts < 1) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('retry attempts must be >= 1');
  }
  if (!Number.isInteger(resilience.breakerFailures) || resilience.breakerFailures < 1) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('circuit breaker failures must be >= 1');
  }
  checkClientLimits(config.clientLimits);
  checkMirrorFilters(config);
  if (config.publicUrl !== undefined) checkHttpUrl('--public-url', config.publicUrl);
  if (config.indexTtlMs < 0 || config.gitRefreshMs < 1000) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('--index-ttl must be >= 0 and --refresh >= 1s');
  }
}

/**
 * Toolchain settings with their defaults: static.rust-lang.org, `--index-ttl`'s TTL, the
 * minimal profile for this machine's target. Channels are checked here, so a typo stops the
 * start with one line.
 */
function rustupSettings(
  settings: Partial<RustupSettings>,
  indexTtlMs: number | undefined,
): RustupSettings {
  const upstream = 'upstream' in settings ? settings.upstream : DEFAULTS.rustupUpstream;
  const mirror = settings.mirror ?? [];
  for (const channel of mirror) manifestPathOfChannel(channel);
  const targets = settings.targets ?? [];
  for (const target of targets) {
    if (!/^[A-Za-z0-9_.-]+$/.test(target)) {
      throw Errors.CARGO_CACHER_INVALID_CONFIG(`not a target triple: ${JSON.stringify(target)}`);
    }
  }
  const profile = settings.profile ?? 'minimal';
  if (!RUSTUP_PROFILES.includes(profile)) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `--rustup-profile must be one of ${RUSTUP_PROFILES.join(', ')}, got "${profile}"`,
    );
  }
  return {
    upstream:
      upstream === undefined
        ? undefined
        : checkHttpUrl('--rustup-upstream', upstream).replace(/\/+$/, ''),
    ttlMs: settings.ttlMs ?? indexTtlMs ?? DEFAULTS.indexTtlMs,
    mirror,
    targets: targets.length > 0 ? targets : [currentHostTriple()],
    profile,
  };
}

/** `--mirror-filter` narrows `-a`; `--mirror-keep` counts versions of its roots. */
function checkMirrorFilters(config: Config): void {
  if (config.mirrorFilters.length > 0 && !config.all) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('--mirror-filter narrows -a/--all: add -a');
  }
  if (!Number.isInteger(config.mirrorKeep) || config.mirrorKeep < 1) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `--mirror-keep must be a whole number >= 1, got ${config.mirrorKeep}`,
    );
  }
}

function checkClientLimits(limits: ClientLimits): void {
  const { headersTimeoutMs, requestTimeoutMs, idleTimeoutMs, sendTimeoutMs } = limits;
  if (![headersTimeoutMs, requestTimeoutMs, idleTimeoutMs, sendTimeoutMs].every((ms) => ms >= 1)) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('client timeouts must be at least 1ms');
  }
  // Node checks the header deadline only while the request deadline has not passed.
  if (headersTimeoutMs > requestTimeoutMs) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      '--client-header-timeout must not be longer than --client-body-timeout',
    );
  }
  const { maxConnections, maxConnectionsPerIp } = limits;
  if (maxConnections !== undefined && !(Number.isInteger(maxConnections) && maxConnections >= 1)) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG('--max-connections must be a whole number >= 1');
  }
  if (!Number.isInteger(maxConnectionsPerIp) || maxConnectionsPerIp < 1) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      '--max-connections-per-ip must be a whole number >= 1',
    );
  }
}

/** The entries of `value` whose value is not `undefined` (so they do not hide defaults). */
function withoutUndefined<T extends object>(value: T | undefined): Partial<T> {
  if (value === undefined) return {};
  return Object.fromEntries(
    Object.entries(value).filter(([, entry]) => entry !== undefined),
  ) as Partial<T>;
}

/** Splits a comma-separated list of URLs (`-s a,b`); blank entries are dropped. */
function splitList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** Checks that a flag value is an absolute http(s) URL and returns it. */
export function checkHttpUrl(flag: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`${flag} must be an http(s) URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`${flag} must be an http(s) URL, got "${value}"`);
  }
  return value;
}
