/**
 * @module
 * Where each flag of the serve command lives in the config file: the one table of per-flag data
 * the config layer needs. Everything else (the key, the environment variable, the parser, the
 * type) comes from the commander option itself (config-keys.ts). A flag added to
 * `src/cli/main.ts` needs a row here: test/unit/config-keys.test.ts fails until it has one.
 */

/** The sections of the config file, in the order `cargo-cacher config` prints them. */
export const SECTIONS = [
  'server',
  'storage',
  'upstream',
  'index',
  'git',
  'mirror',
  'policy',
  'expiry',
  'tls',
  'auth',
  'log',
  'rustup',
] as const;

export type Section = (typeof SECTIONS)[number];

/** What each section is for (the headings of docs/CONFIG.md). */
export const SECTION_TITLES: Record<Section, string> = {
  server: 'listening, clients and shutdown',
  storage: 'where crates and index files are kept',
  upstream: 'the registry cargo-cacher fetches from',
  index: 'serving index files',
  git: 'the git index mirror',
  mirror: 'prefetch and mirror jobs',
  policy: 'the supply-chain policy',
  expiry: 'expiration and integrity',
  tls: 'HTTPS with HTTP/2',
  auth: 'access control',
  log: 'logging',
  rustup: 'the rustup mirror',
};

/**
 * Flag long name (without `--`) → section. A negated flag (`--no-git`) has a row of its own;
 * it usually sits next to its positive flag.
 */
export const CONFIG_SECTIONS: Readonly<Record<string, Section>> = {
  port: 'server',
  listen: 'server',
  'public-url': 'server',
  'client-header-timeout': 'server',
  'client-body-timeout': 'server',
  'client-idle-timeout': 'server',
  'client-send-timeout': 'server',
  'max-connections': 'server',
  'max-connections-per-ip': 'server',
  'shutdown-timeout': 'server',

  index: 'storage',
  storage: 'storage',
  's3-endpoint': 'storage',
  's3-region': 'storage',
  's3-path-style': 'storage',

  sparse: 'upstream',
  upstream: 'upstream',
  offline: 'upstream',
  'upstream-connect-timeout': 'upstream',
  'upstream-timeout': 'upstream',
  'upstream-body-timeout': 'upstream',
  'upstream-proxy': 'upstream',
  'upstream-ca': 'upstream',
  'max-crate-size': 'upstream',

  'index-ttl': 'index',
  'only-held': 'index',

  git: 'git',
  'no-git': 'git',
  refresh: 'git',

  all: 'mirror',
  'skip-yanked': 'mirror',
  'mirror-filter': 'mirror',
  'mirror-keep': 'mirror',
  prefetch: 'mirror',
  threads: 'mirror',

  'min-publish-age': 'policy',
  'allow-young': 'policy',
  deny: 'policy',
  'keep-removed': 'policy',
  'withheld-as': 'policy',

  'max-size': 'expiry',
  'expire-after': 'expiry',
  pin: 'expiry',
  'gc-interval': 'expiry',
  'verify-every': 'expiry',

  'tls-cert': 'tls',
  'tls-key': 'tls',

  'auth-token-file': 'auth',

  debug: 'log',
  'log-format': 'log',

  'rustup-upstream': 'rustup',
  'rustup-ttl': 'rustup',
  'rustup-mirror': 'rustup',
  'rustup-targets': 'rustup',
  'rustup-profile': 'rustup',
};

/**
 * Flags that are not settings of the proxy and have no key in the file: `--config` names the
 * file itself (its environment variable, `CARGO_CACHER_CONFIG`, still works), `--version` and
 * `--help` print and exit, and `--check` belongs to `cargo-cacher config`.
 */
export const COMMAND_LINE_ONLY: ReadonlySet<string> = new Set([
  'config',
  'version',
  'help',
  'check',
]);
